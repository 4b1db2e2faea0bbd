// The tutorial's training and evaluation loops, and the whole `convkit train` run around them.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <functional>
#include <memory>
#include <iosfwd>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/transforms.h"
#include "models/models.h"

namespace convkit::train {

// Every default of `convkit train` lives here (the CLI shows these values in --help).
struct TrainOptions {
  std::string model = "lenet";
  int64_t epochs = 10;
  int64_t batch_size = 64;
  double lr = 1e-3;  // Adam's default, as the tutorial uses it
  uint64_t seed = 1234;
  std::string data_dir = data::kDefaultDataDir;
  std::string out_dir;  // empty: runs/<model>
  int threads = 0;      // 0: all cores
  std::string device = "auto";
  double rotation = 25.0;  // degrees for the rotated test set
  int64_t limit = 0;       // 0: all images
  bool quiet = false;      // no progress bars
  bool resume = false;     // continue the run in out_dir from its last completed epoch
  bool report = true;      // figures/ and report.html after the test
  bool test = true;        // evaluate the test sets (sweeps select on validation only)
  bool exact = false;      // LibTorch's kernels only: bit-identical to the Python tutorial, slower

  // Beyond the tutorial (the defaults keep it exact).
  std::string optimizer = "adam";  // adam | adamw | sgd | rmsprop
  double momentum = 0.9;           // sgd and rmsprop
  bool nesterov = false;           // sgd
  double weight_decay = 0;
  std::string schedule = "none";   // none | step | cosine | onecycle
  int64_t step_size = 5;           // step schedule: epochs between decays
  double gamma = 0.1;              // step schedule: decay factor
  double label_smoothing = 0;
  int64_t patience = 0;            // early stopping on validation loss (0: off)
  data::Augmentation augmentation;
};

// The named recipes of --preset ("tutorial", "competition", "rotation").
const std::vector<std::string>& preset_names();
TrainOptions preset(const std::string& name);

// Throws an Error naming the offending flag.
void validate(const TrainOptions& options);
std::filesystem::path out_dir_for(const TrainOptions& options);

struct EpochStats {
  double loss = 0;  // mean over batches, as the tutorial computes it
  double acc = 0;   // mean over batches, fraction 0..1
};

// A training batch split into one shard per thread. The replicas are copies of the model
// that share its parameters' storage, each with its own flat gradient buffer; after the
// shards' backward passes their gradients are summed into `gradient`, the model's (see
// flatten_parameters), or by FusedAdam inside its step. Empty: the whole batch on the model.
struct BatchShards {
  std::vector<models::Classifier> replicas;
  std::vector<torch::Tensor> replica_gradients;
  torch::Tensor gradient;
};

// What a training pass does besides the tutorial's plain step.
struct StepSettings {
  double label_smoothing = 0;
  data::Augmentation augmentation;
  float background = 0;                            // normalised black, for augmentation fill
  std::function<void(int64_t batch)> before_step;  // e.g. a per-step learning-rate schedule
  BatchShards shards;                              // see make_shards
};

// Moves every parameter of `model` into views of one contiguous buffer, and its gradient into
// views of another, so that an optimiser updates one tensor: one pass per step instead of ~10
// ops per parameter. Returns the buffer, a leaf whose grad() is the gradient buffer; optimise
// it in place of model.parameters(). The numbers do not change (element-wise updates).
torch::Tensor flatten_parameters(torch::nn::Module& model);

// `count` replicas of `model` (threads - 1) for splitting every training batch into one shard
// per thread: LeNet's small layers do not scale over threads inside one op, but whole shards
// do. `flat` is the model's flatten_parameters buffer. None in exact mode, when a convolution
// is not fused (models.h) or when the network has batch norm or dropout (their results would
// depend on the split or on the order threads draw random numbers). Building them leaves the
// global generator as it was.
BatchShards make_shards(const models::ClassifierImpl& model, const torch::Tensor& flat, const std::string& model_name,
                        int64_t num_classes, int64_t count);

// What a training run sets up around its network (after loading any weights into it): in
// exact mode or off the CPU nothing, the parameters as they are; otherwise the flat parameter
// buffer and the shards for `threads` threads.
struct FastPath {
  std::vector<torch::Tensor> parameters;  // what the optimiser updates
  BatchShards shards;                     // for StepSettings::shards
};
FastPath prepare_fast_path(models::ClassifierImpl& model, const std::string& model_name, int64_t num_classes,
                           int threads, const torch::Device& device);

// One pass over `order` (indices into `inputs`) in batches, with optimiser steps.
EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer,
                       const torch::Tensor& inputs, const torch::Tensor& labels, const torch::Tensor& order,
                       int64_t batch_size, const torch::Device& device, const StepSettings& settings = {},
                       bool progress = false);

// Learning rate at `step` of `total_steps` (0-based), for options.schedule.
double scheduled_lr(const TrainOptions& options, int64_t step, int64_t steps_per_epoch, int64_t total_steps);

// Loss and accuracy over `inputs` in order, eval mode, no gradients.
EpochStats evaluate(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                    int64_t batch_size, const torch::Device& device, bool progress = false);

// Python's DataLoader draws from the global generator each time an iterator is created
// (the base seed for workers, drawn even with none); mirrored to keep the random stream aligned.
void draw_loader_base_seed();

// RandomSampler's order in torch 1.13: a seed drawn from the global generator, then
// randperm(n) on a fresh generator seeded with it.
torch::Tensor random_sampler_order(int64_t n);

struct EpochRecord {
  int64_t epoch = 0;
  EpochStats train, valid;
  double train_seconds = 0, seconds = 0;
};

struct RunResult {
  std::vector<EpochRecord> history;
  int64_t best_epoch = 0;
  EpochStats test, rotated_test;
  std::filesystem::path out_dir;
};

// Sets the options named in `settings` (the keys of run.json, e.g. {"lr": 0.01, "aug_hflip":
// true}; "preset" first resets to that preset); an Error naming `source` and the key otherwise.
void apply_settings(TrainOptions& options, const nlohmann::json& settings, const std::string& source);

// The settings a run was started with (RUN_DIR/run.json), for --resume.
TrainOptions read_run_options(const std::filesystem::path& run_dir);

// The whole tutorial: data, split, model, epochs with best checkpoint, test and rotated test,
// history.json and metrics.json. Prints the tutorial's lines to `out`.
RunResult run_training(const TrainOptions& options, std::ostream& out);

}  // namespace convkit::train
