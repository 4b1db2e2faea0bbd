#include "models/classifier.h"

#include <ATen/Parallel.h>
#include <torch/nn/functional.h>
#include <torch/nn/modules/batchnorm.h>

#include "models/batch_norm_relu_pool.h"
#include "models/fused_conv.h"
#include "models/fused_linear.h"

namespace convkit::models {

namespace F = torch::nn::functional;

torch::Tensor ClassifierImpl::conv_pool_relu(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) const {
  if (!exact_ && x.dim() == 4 && models::conv_pool_relu_fits(conv.options, x.size(2), x.size(3)) &&
      models::conv_pool_relu_supported(x, conv.weight))
    return models::conv_pool_relu(x, conv.weight, conv.bias);
  TORCH_CHECK(!at::in_parallel_region(), "a convolution outside the fused kernel inside a parallel region");
  return F::relu(F::max_pool2d(conv.forward(x), F::MaxPool2dFuncOptions(2)));
}

torch::Tensor ClassifierImpl::batch_norm_relu_pool(torch::nn::BatchNorm2dImpl& norm, const torch::Tensor& x,
                                                   bool pool) const {
  if (!exact_ && models::batch_norm_relu_pool_supported(norm, x, pool))
    return models::batch_norm_relu_pool(norm, x, pool);
  const torch::Tensor y = F::relu(norm.forward(x));
  return pool ? F::max_pool2d(y, F::MaxPool2dFuncOptions(2)) : y;
}

torch::Tensor ClassifierImpl::linear(torch::nn::LinearImpl& fc, const torch::Tensor& x, bool relu) const {
  if (!exact_ && x.dim() == 2) return models::linear(x, fc.weight, fc.bias, relu);
  const torch::Tensor y = fc.forward(x);
  return relu ? F::relu(y) : y;
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

void set_batch_norm_momentum(torch::nn::Module& module, double momentum) {
  for (const auto& m : module.modules()) {
    if (auto* bn2 = m->as<torch::nn::BatchNorm2dImpl>()) bn2->options.momentum(momentum);
    if (auto* bn1 = m->as<torch::nn::BatchNorm1dImpl>()) bn1->options.momentum(momentum);
  }
}

}  // namespace convkit::models
