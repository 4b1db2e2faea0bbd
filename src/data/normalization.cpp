#include "data/normalization.h"

#include <torch/torch.h>

#include "data/batches.h"

namespace convkit::data {

Normalization normalization_from(const torch::Tensor& train_images) {
  const torch::Tensor pixels = train_images.to(torch::kFloat);
  return {(pixels.mean() / 255).item<float>(), (pixels.std() / 255).item<float>()};
}

torch::Tensor to_model_input(const torch::Tensor& pixels, Normalization norm) {
  torch::Tensor x = pixels.dim() == 3 ? pixels.unsqueeze(1) : pixels;
  // Same ops, same order, same dtypes as torchvision's ToTensor().div(255) then Normalize's
  // sub_(mean).div_(std) with one-element float tensors, so the values are bit-identical.
  const auto mean = torch::tensor({norm.mean}).view({-1, 1, 1});
  const auto std = torch::tensor({norm.std}).view({-1, 1, 1});
  // In place after the conversion into a new tensor: the same arithmetic without a second
  // full-size temporary, and the caller's (float) pixels are never modified.
  torch::Tensor out = empty_floats(x.sizes()).copy_(x);
  return out.div_(255).sub_(mean).div_(std);
}

}  // namespace convkit::data
