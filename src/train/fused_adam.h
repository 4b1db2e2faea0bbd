// Adam's step as one pass over each parameter.
#pragma once

#include <torch/optim/adam.h>

#include <unordered_map>
#include <vector>

namespace convkit::train {

// torch::optim::Adam with the same maths, options and state (so save/load and resume.pt do not
// change), whose step updates a contiguous float32 CPU parameter in one pass - moments, bias
// correction and update per element - split over the threads, instead of ~10 element-wise ops
// each reading and writing the whole buffer on one thread. Anything else (amsgrad, other dtypes
// or devices) takes torch::optim::Adam's own step. Per element the operations are IEEE ones in
// a fixed order (no contraction into FMA), so the result depends neither on the thread count
// nor on the instruction set; it agrees with torch::optim::Adam to float rounding.
class FusedAdam : public torch::optim::Adam {
 public:
  using torch::optim::Adam::Adam;

  // From now on the gradient of the parameter whose grad() is `gradient` counts these buffers
  // (contiguous float32, its size) too, added element by element in order inside the step's
  // pass: the batch shards' gradients (train/shards.h) summed without a pass of their own.
  // grad() itself is left as it is. Replaces (or, given no parts, clears) the parts set
  // before; false when there are none, when no parameter of this optimiser has that gradient,
  // or when the fused step cannot take it.
  bool set_gradient_parts(const torch::Tensor& gradient, const std::vector<torch::Tensor>& parts);

  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  std::unordered_map<const c10::TensorImpl*, std::vector<torch::Tensor>> parts_;
};

}  // namespace convkit::train
