#include "train/loop.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>

#include "data/batches.h"
#include "dist/process_group.h"
#include "train/optimizer.h"
#include "train/pytorch_random.h"
#include "util/error.h"
#include "util/interrupt.h"
#include "util/progress.h"

namespace convkit::train {
namespace {

// This rank's part [begin, end) of n items: all of them without a group.
std::pair<int64_t, int64_t> rank_part(int64_t n, const dist::ProcessGroup* group) {
  if (!group) return {0, n};
  return {n * group->rank() / group->size(), n * (group->rank() + 1) / group->size()};
}

// While it lives, the global generator is this rank's own (see DataParallel).
class RankGenerator {
 public:
  explicit RankGenerator(const DataParallel& p) : state_(p.generator_state) {
    if (!state_.defined()) return;
    global_ = global_generator_state();
    set_global_generator_state(state_);
  }
  ~RankGenerator() {
    if (!state_.defined()) return;
    state_.copy_(global_generator_state());
    set_global_generator_state(global_);
  }
  RankGenerator(const RankGenerator&) = delete;
  RankGenerator& operator=(const RankGenerator&) = delete;

 private:
  torch::Tensor state_, global_;
};

void sum_gradients_over_ranks(const DataParallel& p) {
  const torch::Tensor flat = p.parameters.size() == 1 ? p.parameters[0].grad() : torch::Tensor();
  if (flat.defined() && flat.scalar_type() == torch::kFloat && flat.is_contiguous()) {  // the fast path's
    p.group->sum_gradient(flat, p.spin);
    return;
  }
  std::vector<torch::Tensor> gradients;
  for (const torch::Tensor& parameter : p.parameters) {
    // A rank that has had no rows yet has no gradient: it adds zeros.
    if (!parameter.grad().defined()) parameter.mutable_grad() = torch::zeros_like(parameter);
    gradients.push_back(parameter.grad());
  }
  p.group->allreduce_sum(gradients);
}

// The sums of every rank, in place.
void sum_over_ranks(const dist::ProcessGroup* group, double& a, double& b) {
  if (!group) return;
  std::vector<torch::Tensor> sums{torch::tensor({a, b}, torch::kDouble)};
  group->allreduce_sum(sums);
  a = sums[0][0].item<double>();
  b = sums[0][1].item<double>();
}

// A batch's inputs augmented and its targets mixed, when asked for; else undefined tensors.
struct WholeBatch {
  torch::Tensor inputs, targets;
};

WholeBatch whole_batch(const torch::Tensor& inputs, const torch::Tensor& labels, const torch::Tensor& idx,
                       const StepSettings& settings) {
  if (!settings.augmentation.enabled() && !settings.mixing.enabled()) return {};
  WholeBatch batch{data::gather_rows(inputs, idx), {}};
  if (settings.augmentation.enabled())
    batch.inputs = data::augment(batch.inputs, settings.augmentation, settings.background);
  if (settings.mixing.enabled()) {
    data::MixedBatch mixed = data::mix(batch.inputs, data::gather_rows(labels, idx), settings.classes, settings.mixing);
    batch = {mixed.inputs, mixed.targets};
  }
  return batch;
}

}  // namespace

EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& inputs,
                       const torch::Tensor& labels, const torch::Tensor& order, int64_t batch_size,
                       const torch::Device& device, const StepSettings& settings, bool progress) {
  namespace F = torch::nn::functional;
  const auto loss_options = F::CrossEntropyFuncOptions().label_smoothing(settings.label_smoothing);
  const LossFn loss_of = [&](const torch::Tensor& logits, const torch::Tensor& y) {
    return settings.label_smoothing > 0 ? F::cross_entropy(logits, y, loss_options) : F::cross_entropy(logits, y);
  };
  model.train();
  for (const auto& replica : settings.shards.replicas) replica->train();
  const int64_t n = order.size(0);
  Progress bar("Training", n, progress);
  double loss_sum = 0, acc_sum = 0;
  int64_t batches = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const torch::Tensor idx = order.slice(0, start, std::min(n, start + batch_size));
    // Augmentation and mixing draw random numbers for the whole batch, in order; without them
    // each shard gathers its own images.
    const WholeBatch batch = whole_batch(inputs, labels, idx, settings);
    const BatchRows rows = [&](int64_t lo, int64_t hi) {
      const torch::Tensor part = idx.slice(0, lo, hi);
      const torch::Tensor x = batch.inputs.defined() ? batch.inputs.slice(0, lo, hi) : data::gather_rows(inputs, part);
      const torch::Tensor y =
          batch.targets.defined() ? batch.targets.slice(0, lo, hi) : data::gather_rows(labels, part);
      return std::make_pair(x.to(device), y.to(device));
    };
    if (settings.before_step) settings.before_step(batches);
    if (settings.schedule) set_learning_rate(optimizer, settings.schedule->lr_at(settings.first_step + batches));
    if (!settings.shards.gradient.defined()) optimizer.zero_grad();  // else each shard clears its own
    const auto [begin, end] = rank_part(idx.size(0), settings.parallel.group);
    double loss = 0, acc = 0;
    {
      const RankGenerator own_draws(settings.parallel);
      std::tie(loss, acc) = sharded_forward_backward(model, settings.shards, begin, end, idx.size(0), rows, loss_of,
                                                     !settings.optimizer_sums_shards);
    }
    // A diverged run can only get worse: stop before the step spreads NaN into the weights.
    if (!std::isfinite(loss)) {
      throw Diverged("training diverged: the loss is " + std::to_string(loss) + " at step " +
                     std::to_string(batches + 1) + " of the epoch (a lower --lr may help)");
    }
    if (settings.parallel.group) sum_gradients_over_ranks(settings.parallel);
    apply_weight_decay(settings.weight_decay, learning_rate(optimizer));
    optimizer.step();
    if (settings.average) settings.average->update(model);
    stop_if_interrupted();  // after the step: the weights and the optimiser's state agree
    loss_sum += loss;
    acc_sum += acc;
    ++batches;
    bar.advance(idx.size(0));
  }
  sum_over_ranks(settings.parallel.group, loss_sum, acc_sum);
  return {loss_sum / batches, acc_sum / batches};
}

EpochStats evaluate(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                    int64_t batch_size, const torch::Device& device, bool progress, const dist::ProcessGroup* group) {
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t n = inputs.size(0);
  const int64_t batches = (n + batch_size - 1) / batch_size;
  const auto [first, last] = rank_part(batches, group);
  Progress bar("Evaluating", std::min(n, last * batch_size) - first * batch_size, progress);
  double loss_sum = 0, acc_sum = 0;
  for (int64_t b = first; b < last; ++b) {
    const int64_t start = b * batch_size, end = std::min(n, start + batch_size);
    const torch::Tensor x = inputs.slice(0, start, end).to(device);
    const torch::Tensor y = labels.slice(0, start, end).to(device);
    const torch::Tensor logits = model.forward(x).logits;
    loss_sum += torch::nn::functional::cross_entropy(logits, y).item<float>();
    acc_sum += batch_accuracy(logits, y);
    bar.advance(end - start);
    stop_if_interrupted();
  }
  sum_over_ranks(group, loss_sum, acc_sum);
  return {loss_sum / batches, acc_sum / batches};
}

}  // namespace convkit::train
