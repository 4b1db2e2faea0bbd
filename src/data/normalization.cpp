#include "data/normalization.h"

#include <torch/torch.h>

#include "data/batches.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::data {
namespace {

std::string values(const std::vector<float>& v) {
  if (v.size() == 1) return strprintf("%.4f", v[0]);
  std::vector<std::string> parts;
  for (const float x : v) parts.push_back(strprintf("%.4f", x));
  return "(" + join(parts, ", ") + ")";
}

torch::Tensor per_channel(const std::vector<float>& v) { return torch::tensor(v, torch::kFloat).view({-1, 1, 1}); }

}  // namespace

std::string Normalization::str() const { return "mean " + values(mean) + ", std " + values(std); }

Normalization normalization_from(const torch::Tensor& train_images) {
  TORCH_CHECK(train_images.dim() == 4, "normalization_from expects [N,C,H,W]");
  Normalization norm{{}, {}};
  for (int64_t c = 0; c < train_images.size(1); ++c) {
    // One channel of [N,1,H,W] is the whole tensor, reduced in the tutorial's order.
    const torch::Tensor pixels = train_images.select(1, c).contiguous().to(torch::kFloat);
    norm.mean.push_back((pixels.mean() / 255).item<float>());
    norm.std.push_back((pixels.std() / 255).item<float>());
  }
  return norm;
}

torch::Tensor to_model_input(const torch::Tensor& pixels, const Normalization& norm) {
  TORCH_CHECK(pixels.dim() == 4 && pixels.size(1) == norm.channels(),
              "to_model_input expects [N,C,H,W] with one mean per channel");
  // Same ops, same order, same dtypes as torchvision's ToTensor().div(255) then Normalize's
  // sub_(mean).div_(std) with [C,1,1] float tensors, so the values are bit-identical.
  // In place after the conversion into a new tensor: the same arithmetic without a second
  // full-size temporary, and the caller's (float) pixels are never modified.
  torch::Tensor out = empty_floats(pixels.sizes()).copy_(pixels);
  return out.div_(255).sub_(per_channel(norm.mean)).div_(per_channel(norm.std));
}

torch::Tensor normalized_black(const Normalization& norm) {
  return ((0.f - per_channel(norm.mean)) / per_channel(norm.std)).unsqueeze(0);
}

}  // namespace convkit::data
