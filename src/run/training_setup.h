// What a run and the learning-rate range test share: the training data as a run loads it, and the
// network with its optimiser and step settings as a run builds them.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <iosfwd>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "data/normalization.h"
#include "data/split.h"
#include "models/classifier.h"
#include "run/options.h"
#include "train/loop.h"
#include "train/schedule.h"
#include "train/shards.h"
#include "train/weight_average.h"

namespace convkit::dist {
class ProcessGroup;
}

namespace convkit::run {

// The training images in model-input form, and the validation split taken from them.
struct TrainingData {
  data::Dataset data;
  data::Normalization norm;
  torch::Tensor train_inputs;  // all training images (60,000), normalised; the split's train indices select from it
  data::TrainValidIndices split;
  torch::Tensor valid_inputs, valid_labels;
};

// Loads the data, normalises it and splits it 90/10 on the global generator (or takes a val/
// folder's images), printing the tutorial's lines to `out`. With a group, the ranks first check
// that they loaded the same data, and only rank 0 writes the decoded-image cache.
TrainingData load_training_data(const TrainOptions& options, std::ostream& out,
                                const dist::ProcessGroup* group = nullptr);

// One epoch's order of the training split: a fresh shuffle, drawn as the tutorial's DataLoader
// draws it.
torch::Tensor shuffled_training_order(const TrainingData& d);

// The network, on its device, and the optimiser over whatever the fast path (flat parameters,
// batch shards) made of its parameters.
struct Network {
  models::Classifier model;
  train::FastPath fast;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  std::unique_ptr<train::WeightAverage> average;  // --ema

  // What is validated, kept as model.pt and tested: the weight average when there is one.
  const models::Classifier& evaluated() const { return average ? average->shared() : model; }
};

// A fresh network for `data` (its initial weights drawn from the global generator) on `device`,
// in exact mode or not and with the batch norm momentum the options ask for.
models::Classifier make_network(const TrainOptions& options, const data::Dataset& data, const torch::Device& device);

// Sets the layers that are fitted to the data rather than trained (a `pw` patch whitening) from
// the training split's images, before the first step.
void fit_to_training_images(models::ClassifierImpl& model, const TrainingData& d);

// The fast path over n.model and the optimiser over its parameters. After any weights are
// loaded into the model, as prepare_fast_path requires.
void prepare_optimizer(Network& n, const TrainOptions& options, int threads, const torch::Device& device);

// "Model: lenet (44426 parameters) | device cpu | 2 threads | fused kernels", with its newline.
std::string network_line(const TrainOptions& options, const models::ClassifierImpl& model, const torch::Device& device,
                         int threads);

// What each training step of `net` does besides the plain step; with a group, as one rank's.
train::StepSettings step_settings(const TrainOptions& options, const data::Normalization& norm, const Network& net,
                                  const train::LrSchedule* schedule, const dist::ProcessGroup* group = nullptr);

}  // namespace convkit::run
