// nn::Linear (and its ReLU) as one autograd op.
#pragma once

#include <torch/types.h>

namespace convkit::models {

// input @ weight^T + bias, then the ReLU in place when `relu`: nn::Linear (and ReLU) as one
// autograd op. Its backward adds the weight and bias gradients straight into weight.grad()
// and bias.grad() (one matrix product into the buffer, no temporary and no separate add, as
// Megatron's gradient-accumulation fusion does) and hands autograd only the input's gradient.
// At LeNet's sizes this halves the ops per layer and per step. Any device and dtype; without
// a bias, LibTorch's own ops.
torch::Tensor linear(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias, bool relu);

}  // namespace convkit::models
