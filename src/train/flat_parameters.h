// A model's parameters and gradients as views of one contiguous buffer each.
#pragma once

#include <torch/nn/module.h>

namespace convkit::train {

// Elements per task when a pass over a flat buffer is split over the threads.
inline constexpr int64_t kFlatGrain = 16384;

// Moves every parameter of `model` into views of one contiguous buffer, and its gradient into
// views of another, so that an optimiser updates one tensor: one pass per step instead of ~10
// ops per parameter. Returns the buffer, a leaf whose grad() is the gradient buffer; optimise
// it in place of model.parameters(). The numbers do not change (element-wise updates).
torch::Tensor flatten_parameters(torch::nn::Module& model);

// Points every parameter's gradient into one zeroed buffer (backward then adds into it in
// place); returns the buffer.
torch::Tensor attach_flat_gradients(torch::nn::Module& model);

}  // namespace convkit::train
