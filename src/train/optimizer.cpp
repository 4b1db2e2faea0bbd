#include "train/optimizer.h"

#include <torch/torch.h>

#include "train/fused_adam.h"
#include "train/weight_decay.h"

namespace convkit::train {

const std::vector<std::string>& optimizer_names() {
  static const std::vector<std::string> names = {"adam", "adamw", "sgd", "sgdw", "rmsprop"};
  return names;
}

std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSettings& settings,
                                                        const std::vector<torch::Tensor>& params, bool exact) {
  namespace optim = torch::optim;
  OptimizerSettings o = settings;
  if (step_applies_weight_decay(o)) o.weight_decay = 0;  // the step's WeightDecay applies it
  if (o.name == "adamw") {
    return std::make_unique<optim::AdamW>(params, optim::AdamWOptions(o.lr).weight_decay(o.weight_decay));
  }
  if (o.name == "sgd" || o.name == "sgdw") {
    return std::make_unique<optim::SGD>(
        params, optim::SGDOptions(o.lr).momentum(o.momentum).nesterov(o.nesterov).weight_decay(o.weight_decay));
  }
  if (o.name == "rmsprop") {
    return std::make_unique<optim::RMSprop>(
        params, optim::RMSpropOptions(o.lr).momentum(o.momentum).weight_decay(o.weight_decay));
  }
  const auto adam = optim::AdamOptions(o.lr).weight_decay(o.weight_decay);
  if (exact) return std::make_unique<optim::Adam>(params, adam);
  return std::make_unique<FusedAdam>(params, adam);
}

bool share_shard_gradients(torch::optim::Optimizer& optimizer, const BatchShards& shards) {
  auto* fused_adam = dynamic_cast<FusedAdam*>(&optimizer);
  return fused_adam && fused_adam->set_gradient_parts(shards.gradient, shards.replica_gradients);
}

double learning_rate(torch::optim::Optimizer& optimizer) { return optimizer.param_groups().at(0).options().get_lr(); }

void set_learning_rate(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

}  // namespace convkit::train
