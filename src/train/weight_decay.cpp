#include "train/weight_decay.h"

#include <torch/torch.h>

namespace convkit::train {

bool step_applies_weight_decay(const OptimizerSettings& s) {
  return s.weight_decay > 0 && (s.name == "sgdw" || s.no_decay_on_norms);
}

WeightDecay step_weight_decay(const OptimizerSettings& s, const torch::nn::Module& model) {
  WeightDecay decay;
  if (!step_applies_weight_decay(s)) return decay;
  decay.rate = s.weight_decay;
  decay.decoupled = s.name == "sgdw" || s.name == "adamw";
  // Biases and batch norm's scale and shift are vectors; the weights that decay are not.
  for (const torch::Tensor& p : model.parameters())
    if (!s.no_decay_on_norms || p.dim() > 1) decay.parameters.push_back(p);
  return decay;
}

void apply_weight_decay(const WeightDecay& decay, double lr) {
  if (!decay.active()) return;
  torch::NoGradGuard no_grad;
  for (const torch::Tensor& p : decay.parameters) {
    if (decay.decoupled) {
      p.mul_(1 - lr * decay.rate);  // as AdamW's step does it
    } else if (p.grad().defined()) {
      p.mutable_grad().add_(p, decay.rate);
    }
  }
}

}  // namespace convkit::train
