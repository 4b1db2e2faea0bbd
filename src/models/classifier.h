// The interface every network implements, and the two building blocks that run as fused ops
// outside exact mode.
#pragma once

#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <memory>

#include "models/inference_graph.h"

namespace convkit::models {

// What every classifier returns: the logits and the hidden representation the tutorial
// plots with PCA / t-SNE (`return x, h` in the Python models).
struct Output {
  torch::Tensor logits;
  torch::Tensor hidden;
};

class ClassifierImpl : public torch::nn::Module {
 public:
  virtual Output forward(const torch::Tensor& x) = 0;

  // The inference pass as standard operations on this module's named parameters and buffers
  // (models/inference_graph.h), for the exporters.
  virtual InferenceGraph inference_graph() const = 0;

  // Exact: LibTorch's own kernels only, bit-identical to the Python tutorial. Otherwise (the
  // default) conv -> 2x2 max-pool -> ReLU blocks, batch norm -> ReLU (-> 2x2 max-pool) and
  // linear -> ReLU layers run as single fused ops (models/fused_conv.h,
  // models/batch_norm_relu_pool.h, models/fused_linear.h), equal to float rounding and several
  // times faster on CPU.
  void set_exact(bool exact) { exact_ = exact; }
  bool exact() const { return exact_; }

  // True when, outside exact mode, every convolution runs in the fused kernel on 28x28 input.
  // Only then may several forward passes run side by side on threads: oneDNN's convolutions
  // start their own threads and must not run inside another parallel region.
  virtual bool convolutions_fused() const { return true; }

 protected:
  // relu(max_pool2d(conv(x), 2)), fused when allowed and supported.
  torch::Tensor conv_pool_relu(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) const;
  // relu(norm(x)), then a 2x2 max-pool when `pool`; one op outside exact mode
  // (models/batch_norm_relu_pool.h).
  torch::Tensor batch_norm_relu_pool(torch::nn::BatchNorm2dImpl& norm, const torch::Tensor& x, bool pool) const;
  // fc(x), then the ReLU when `relu`; one op outside exact mode.
  torch::Tensor linear(torch::nn::LinearImpl& fc, const torch::Tensor& x, bool relu = false) const;

 private:
  bool exact_ = false;
};
using Classifier = std::shared_ptr<ClassifierImpl>;

int64_t count_parameters(const torch::nn::Module& module);

// The momentum of every batch norm in `module` (PyTorch's default is 0.1).
void set_batch_norm_momentum(torch::nn::Module& module, double momentum);

}  // namespace convkit::models
