#include "run/training_setup.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <ostream>

#include "dist/process_group.h"
#include "models/patch_whitening.h"
#include "models/registry.h"
#include "train/optimizer.h"
#include "train/pytorch_random.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::run {
namespace {

// A val/ folder's images join the training images after them, so that one tensor holds every
// image the run trains or validates on, as the tutorial's does; returns how many there are.
int64_t take_in_given_validation(data::Dataset& d) {
  if (!d.valid.images.defined() || d.valid.images.size(0) == 0) return 0;
  const int64_t n = d.valid.images.size(0);
  d.train = data::concatenate({d.train, d.valid});
  d.valid = {};
  return n;
}

// The split when validation images were given: the last `valid` of the `n` images.
data::TrainValidIndices given_split(int64_t n, int64_t valid) {
  return {torch::arange(0, n - valid, torch::kInt64), torch::arange(n - valid, n, torch::kInt64)};
}

// What the ranks of a data-parallel run must agree on: the data, by content.
nlohmann::json data_identity(const data::Dataset& d) {
  return {{"train_images", d.train.images.size(0)},
          {"test_images", d.test.images.size(0)},
          {"shape", d.shape().str()},
          {"classes", d.classes},
          {"fingerprint", strprintf("%016llx", static_cast<unsigned long long>(data::fingerprint(d)))}};
}

}  // namespace

TrainingData load_training_data(const TrainOptions& options, std::ostream& out, const dist::ProcessGroup* group) {
  TrainingData d;
  data::DataOptions how = data_options(options);
  how.write_cache = !group || group->is_main();
  d.data = data::load_dataset(options.data_dir, options.limit, how);
  if (group) group->agree("data", data_identity(d.data));
  if (!d.data.skipped.empty()) out << d.data.skipped << "\n";
  const int64_t given_valid = take_in_given_validation(d.data);
  d.norm = data::normalization_from(d.data.train.images);
  out << "Classes: " << d.data.classes.size() << " (" << join(d.data.classes, ", ") << ") | images "
      << d.data.shape().str() << " (channels x height x width)\n";
  out << strprintf("Normalisation: %s (from %lld training images)\n", d.norm.str().c_str(),
                   static_cast<long long>(d.data.train.images.size(0)));
  d.train_inputs = data::to_model_input(d.data.train.images, d.norm);
  d.split = given_valid > 0 ? given_split(d.data.train.images.size(0), given_valid)
                            : data::random_split(d.data.train.images.size(0));
  if (d.split.train.size(0) == 0 || d.split.valid.size(0) == 0) {
    throw file_error(options.data_dir, "has " + std::to_string(d.data.train.images.size(0)) +
                                           " training images: too few to split 90/10 into training and validation");
  }
  d.valid_inputs = d.train_inputs.index_select(0, d.split.valid);
  d.valid_labels = d.data.train.labels.index_select(0, d.split.valid);
  out << "Number of training examples: " << d.split.train.size(0) << "\n"
      << "Number of validation examples: " << d.split.valid.size(0) << "\n"
      << "Number of testing examples: " << d.data.test.images.size(0) << "\n";
  return d;
}

torch::Tensor shuffled_training_order(const TrainingData& d) {
  train::draw_loader_base_seed();
  return d.split.train.index_select(0, train::random_sampler_order(d.split.train.size(0)));
}

models::Classifier make_network(const TrainOptions& options, const data::Dataset& data, const torch::Device& device) {
  models::Classifier model = models::make_model(options.model, static_cast<int64_t>(data.classes.size()), data.shape());
  model->set_exact(options.exact);
  models::set_batch_norm_momentum(*model, options.bn_momentum);
  model->to(device);
  return model;
}

void fit_to_training_images(models::ClassifierImpl& model, const TrainingData& d) {
  for (const auto& module : model.modules(/*include_self=*/false)) {
    if (auto* layer = module->as<models::PatchWhiteningImpl>()) {
      const torch::Tensor first = d.split.train.slice(0, 0, models::kWhiteningImages);
      models::fit_patch_whitening(*layer, d.train_inputs.index_select(0, first));
    }
  }
}

void prepare_optimizer(Network& n, const TrainOptions& options, int threads, const torch::Device& device) {
  // Exact mode keeps the tutorial's per-parameter updates (and its resume.pt layout).
  n.fast = train::prepare_fast_path(*n.model, options.model, threads, device);
  n.optimizer = train::make_optimizer(options.optimizer, n.fast.parameters, options.exact);
}

std::string network_line(const TrainOptions& options, const models::ClassifierImpl& model, const torch::Device& device,
                         int threads) {
  return strprintf("Model: %s (%lld parameters) | device %s | %d threads | %s kernels\n", options.model.c_str(),
                   static_cast<long long>(models::count_parameters(model)), device.str().c_str(), threads,
                   options.exact                ? "exact"
                   : model.convolutions_fused() ? "fused"
                                                : "fused dense, LibTorch convolution");
}

train::StepSettings step_settings(const TrainOptions& options, const data::Normalization& norm, const Network& net,
                                  const train::LrSchedule* schedule, const dist::ProcessGroup* group) {
  train::StepSettings s;
  s.label_smoothing = options.label_smoothing;
  s.augmentation = options.augmentation;
  s.mixing = options.mixing;
  s.classes = net.model->inference_graph().classes;
  s.weight_decay = train::step_weight_decay(options.optimizer, *net.model);
  s.average = net.average.get();
  s.background = data::normalized_black(norm);
  s.schedule = schedule;
  s.shards = net.fast.shards;
  // A data-parallel step sums the whole gradient over the ranks before the optimiser reads it.
  s.optimizer_sums_shards = !group && train::share_shard_gradients(*net.optimizer, net.fast.shards);
  s.parallel.group = group;
  s.parallel.parameters = net.fast.parameters;
  s.parallel.spin = group && group->gradient_wait() == dist::GradientWait::poll;
  return s;
}

}  // namespace convkit::run
