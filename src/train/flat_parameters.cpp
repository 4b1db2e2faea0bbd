#include "train/flat_parameters.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace convkit::train {
namespace {

// One zeroed buffer as large as all of `params` together, and each parameter's slice of it as
// a view of the parameter's shape.
std::pair<torch::Tensor, std::vector<torch::Tensor>> flat_buffer(const std::vector<torch::Tensor>& params) {
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  torch::Tensor buffer = torch::zeros({total}, params.at(0).options().requires_grad(false));
  std::vector<torch::Tensor> views;
  int64_t at = 0;
  for (const auto& p : params) {
    views.push_back(buffer.narrow(0, at, p.numel()).view(p.sizes()));
    at += p.numel();
  }
  return {buffer, views};
}

}  // namespace

torch::Tensor attach_flat_gradients(torch::nn::Module& model) {
  std::vector<torch::Tensor> params = model.parameters();
  auto [grads, views] = flat_buffer(params);
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = views[i];
  return grads;
}

torch::Tensor flatten_parameters(torch::nn::Module& model) {
  std::vector<torch::Tensor> params = model.parameters();
  auto [values, views] = flat_buffer(params);
  for (size_t i = 0; i < params.size(); ++i) {
    views[i].copy_(params[i].detach());
    params[i].set_data(views[i]);
  }
  values.requires_grad_(true);
  values.mutable_grad() = attach_flat_gradients(model);
  return values;
}

}  // namespace convkit::train
