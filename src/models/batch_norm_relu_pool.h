// The common CNN block's tail, relu(batch_norm(x)) and then an optional 2x2 max-pool, as one
// autograd op over the convolution's output.
//
// Why: LibTorch runs it as three ops and six passes over a full-size activation each way (batch
// norm's statistics and output, the ReLU, the pooling and its zero-filled gradient, their
// backward passes), which costs more than the convolution itself on 2 cores. One op reads the
// convolution's output twice forward (statistics, then normalise-ReLU-pool, writing only the
// pooled map and a winner byte per window) and once backward (the two per-channel sums come from
// the pooling winners only, then one pass writes the input gradient).
//
// Batch norm as torch::nn::BatchNorm2d computes it: batch statistics while training (and the
// running statistics updated with its momentum, or the cumulative average without one, and
// num_batches_tracked counted), the running statistics in evaluation. Results agree with the
// LibTorch ops to float rounding (tests/test_fused.cpp), not bit for bit; deterministic for a
// given machine, independent of the thread count.
#pragma once

#include <torch/nn/modules/batchnorm.h>
#include <torch/types.h>

namespace convkit::models {

// True when batch_norm_relu_pool can run this batch norm over `input`: CPU float32 [N, C, H, W]
// with the norm's C channels, affine with running statistics, and H, W >= 2 when pooling.
bool batch_norm_relu_pool_supported(const torch::nn::BatchNorm2dImpl& norm, const torch::Tensor& input, bool pool);

// relu(norm(input)), max-pooled 2x2 when `pool` (odd sizes drop the last row/column, as
// max_pool2d does); differentiable in the input and the norm's weight and bias.
torch::Tensor batch_norm_relu_pool(torch::nn::BatchNorm2dImpl& norm, const torch::Tensor& input, bool pool);

}  // namespace convkit::models
