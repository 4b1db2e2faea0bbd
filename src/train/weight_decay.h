// Weight decay that the training step applies itself, where the optimiser cannot apply it as
// asked: decoupled from the gradient for SGD (sgdw, as AdamW is to Adam), or on the
// convolution and dense weights only (--no-decay-norms), sparing biases and batch norm,
// whose scale decay only fights.
#pragma once

#include <torch/nn/module.h>
#include <torch/types.h>

#include <vector>

#include "train/optimizer.h"

namespace convkit::train {

struct WeightDecay {
  std::vector<torch::Tensor> parameters;  // those that decay: the model's (views of the flat buffer)
  double rate = 0;
  bool decoupled = false;  // p -= lr * rate * p beside the update; else rate * p joins the gradient
  bool active() const { return rate > 0 && !parameters.empty(); }
};

// True when the step, not the optimiser, applies `settings`' weight decay; make_optimizer then
// gives the optimiser none.
bool step_applies_weight_decay(const OptimizerSettings& settings);

// What the step applies for `settings` on `model`: nothing unless step_applies_weight_decay.
WeightDecay step_weight_decay(const OptimizerSettings& settings, const torch::nn::Module& model);

// Applies `decay` at learning rate `lr`, after the gradients are complete and before the
// optimiser's step.
void apply_weight_decay(const WeightDecay& decay, double lr);

}  // namespace convkit::train
