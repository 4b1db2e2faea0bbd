#include "train/weight_average.h"

#include <torch/torch.h>

#include <algorithm>

namespace convkit::train {
namespace {

// Parameters, then buffers, in registration order: the pairs an update walks.
std::vector<torch::Tensor> state_of(const models::ClassifierImpl& model) {
  std::vector<torch::Tensor> state = model.parameters();
  for (const torch::Tensor& b : model.buffers()) state.push_back(b);
  return state;
}

}  // namespace

void copy_state(const models::ClassifierImpl& model, models::ClassifierImpl& into) {
  torch::NoGradGuard no_grad;
  const std::vector<torch::Tensor> from = state_of(model), to = state_of(into);
  TORCH_CHECK(from.size() == to.size(), "copy_state: the networks differ");
  for (size_t i = 0; i < from.size(); ++i) to[i].copy_(from[i]);
}

WeightAverage::WeightAverage(models::Classifier average, const models::ClassifierImpl& model, double decay)
    : average_(std::move(average)), decay_(decay) {
  copy_state(model, *average_);
  for (torch::Tensor& p : average_->parameters()) p.requires_grad_(false);
}

void WeightAverage::update(const models::ClassifierImpl& model) {
  torch::NoGradGuard no_grad;
  const double n = static_cast<double>(updates_++);
  const double d = std::min(decay_, (1 + n) / (10 + n));
  const std::vector<torch::Tensor> from = state_of(model), to = state_of(*average_);
  for (size_t i = 0; i < from.size(); ++i) {
    if (to[i].is_floating_point()) {
      to[i].mul_(d).add_(from[i], 1 - d);
    } else {
      to[i].copy_(from[i]);
    }
  }
}

}  // namespace convkit::train
