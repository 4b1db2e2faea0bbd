// The optimisers `convkit train` offers.
#pragma once

#include <torch/optim/optimizer.h>

#include <memory>
#include <string>
#include <vector>

#include "train/shards.h"

namespace convkit::train {

struct OptimizerSettings {
  std::string name = "adam";       // adam | adamw | sgd | sgdw | rmsprop (sgdw: weight decay decoupled)
  double lr = 1e-3;                // Adam's default, as the tutorial uses it
  double momentum = 0.9;           // sgd and rmsprop
  bool nesterov = false;           // sgd
  double weight_decay = 0;         // L2 (decoupled for adamw and sgdw)
  bool no_decay_on_norms = false;  // weight decay on convolution and dense weights only
};

const std::vector<std::string>& optimizer_names();

// The optimiser named by settings.name over `parameters`; Adam is FusedAdam unless `exact` asks
// for LibTorch's own (bit-identical to the Python tutorial).
std::unique_ptr<torch::optim::Optimizer> make_optimizer(const OptimizerSettings& settings,
                                                        const std::vector<torch::Tensor>& parameters,
                                                        bool exact = false);

// Hands the shards' gradients to the optimiser to add inside its own pass (FusedAdam does);
// true when it took them, and the training step must then not sum them itself.
bool share_shard_gradients(torch::optim::Optimizer& optimizer, const BatchShards& shards);

// Every parameter group's learning rate.
void set_learning_rate(torch::optim::Optimizer& optimizer, double lr);

// The first parameter group's learning rate (all groups share it).
double learning_rate(torch::optim::Optimizer& optimizer);

}  // namespace convkit::train
