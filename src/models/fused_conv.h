// LeNet's hot block, relu(max_pool2d(conv2d(x, weight, bias), 2)), as one autograd op.
//
// Why: at LeNet's shapes (1-16 channels, 5x5 kernels, 28x28 images) LibTorch spends most of a
// training step in per-op overhead and in oneDNN's small-channel convolution, which runs far
// below the machine's peak with one input channel. One pass that convolves only the rows the pooling reads, keeps the
// pooling winner as one byte, and back-propagates only through the winners that passed the
// ReLU does the same maths in a fraction of the time.
//
// Results agree with the LibTorch ops to float rounding (tests/test_models.cpp), not bit for
// bit: --exact keeps LibTorch's own kernels for bit-identical parity with the Python tutorial.
// Deterministic for a given machine, independent of the thread count.
#pragma once

#include <torch/nn/options/conv.h>
#include <torch/types.h>

namespace convkit::models {

// True when conv_pool_relu can stand for this convolution (then 2x2 max-pool and ReLU) over
// images of this size: stride 1, no padding, dilation or groups, a square kernel up to 8, a
// conv output of at least 2x2.
bool conv_pool_relu_fits(const torch::nn::detail::ConvNdOptions<2>& conv, int64_t height, int64_t width);

// The same for these operands, which must also be CPU float32 NCHW.
bool conv_pool_relu_supported(const torch::Tensor& input, const torch::Tensor& weight);

// relu(max_pool2d(conv2d(input, weight, bias), 2)), differentiable in all three operands.
// Odd conv output sizes drop the last row/column, as max_pool2d does.
torch::Tensor conv_pool_relu(const torch::Tensor& input, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace convkit::models
