#include "data/mixing.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace convkit::data {
namespace {

// A Beta(alpha, alpha) draw as the ratio of two Gamma(alpha) draws.
double beta_draw(double alpha) {
  const torch::Tensor g = torch::_standard_gamma(torch::full({2}, alpha, torch::kDouble));
  const double a = g[0].item<double>(), b = g[1].item<double>();
  return a + b > 0 ? a / (a + b) : 0.5;
}

// Pastes a box of `other` covering about 1 - lam of the area into x; returns the share of x
// left, which the targets use.
double paste_box(torch::Tensor& x, const torch::Tensor& other, double lam) {
  const int64_t h = x.size(2), w = x.size(3);
  const double cut = std::sqrt(1 - lam);
  const auto bh = static_cast<int64_t>(static_cast<double>(h) * cut),
             bw = static_cast<int64_t>(static_cast<double>(w) * cut);
  const torch::Tensor centre = torch::rand({2}, torch::kDouble);
  const auto cy = static_cast<int64_t>(centre[0].item<double>() * static_cast<double>(h));
  const auto cx = static_cast<int64_t>(centre[1].item<double>() * static_cast<double>(w));
  const int64_t top = std::clamp<int64_t>(cy - bh / 2, 0, h), bottom = std::clamp<int64_t>(cy + bh / 2, 0, h);
  const int64_t left = std::clamp<int64_t>(cx - bw / 2, 0, w), right = std::clamp<int64_t>(cx + bw / 2, 0, w);
  if (bottom > top && right > left) {
    x.narrow(2, top, bottom - top)
        .narrow(3, left, right - left)
        .copy_(other.narrow(2, top, bottom - top).narrow(3, left, right - left));
  }
  return 1 - static_cast<double>((bottom - top) * (right - left)) / static_cast<double>(h * w);
}

}  // namespace

MixedBatch mix(const torch::Tensor& inputs, const torch::Tensor& labels, int64_t classes, const Mixing& m) {
  namespace F = torch::nn::functional;
  const torch::Tensor onehot = F::one_hot(labels, classes).to(inputs.scalar_type());
  if (!m.enabled()) return {inputs, onehot};
  const bool cutmix = m.cutmix_alpha > 0 && (m.mixup_alpha == 0 || torch::rand({1}).item<double>() < 0.5);
  const double lam_drawn = beta_draw(cutmix ? m.cutmix_alpha : m.mixup_alpha);
  const torch::Tensor perm = torch::randperm(inputs.size(0), torch::kLong);
  const torch::Tensor other = inputs.index_select(0, perm);
  MixedBatch out;
  double lam = lam_drawn;
  if (cutmix) {
    out.inputs = inputs.clone();
    lam = paste_box(out.inputs, other, lam_drawn);
  } else {
    out.inputs = inputs * lam + other * (1 - lam);
  }
  out.targets = onehot * lam + onehot.index_select(0, perm) * (1 - lam);
  return out;
}

}  // namespace convkit::data
