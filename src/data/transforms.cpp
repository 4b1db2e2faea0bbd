#include "data/transforms.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace convkit::data {
namespace {

namespace F = torch::nn::functional;

// Resamples each image of `x` [N,C,H,W] through its own rotation by `radians` (counter-clockwise
// on screen, as PIL and torchvision turn images) and translation (`tx`, `ty`, in normalised
// units: 2/size per pixel), nearest neighbour, uncovered pixels 0. affine_grid maps each output
// pixel (normalised coordinates, y pointing down) to where it samples the input, so theta is the
// inverse transform. The h/w factors keep the rotation rigid on non-square images.
torch::Tensor resample(const torch::Tensor& x, const torch::Tensor& radians, const torch::Tensor& tx,
                       const torch::Tensor& ty) {
  const double h = static_cast<double>(x.size(2)), w = static_cast<double>(x.size(3));
  const torch::Tensor c = radians.cos(), s = radians.sin();
  const torch::Tensor theta =
      torch::stack({torch::stack({c, -s * (h / w), tx}, 1), torch::stack({s * (w / h), c, ty}, 1)}, 1)
          .to(x.dtype())
          .to(x.device());
  const torch::Tensor grid = F::affine_grid(theta, x.sizes().vec(), false);
  return F::grid_sample(
      x, grid, F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false));
}

}  // namespace

torch::Tensor rotate(const torch::Tensor& pixels, const torch::Tensor& angles_degrees) {
  TORCH_CHECK(pixels.dim() == 4, "rotate expects [N,C,H,W]");
  TORCH_CHECK(angles_degrees.numel() == pixels.size(0), "rotate needs one angle per image");
  const int64_t n = pixels.size(0);
  const torch::Tensor radians = angles_degrees.to(torch::kDouble).reshape({n}) * (M_PI / 180.0);
  const torch::Tensor no_shift = torch::zeros_like(radians);
  return resample(pixels, radians, no_shift, no_shift);
}

torch::Tensor augment(const torch::Tensor& inputs, const Augmentation& aug, const torch::Tensor& background) {
  if (!aug.enabled()) return inputs;
  const int64_t n = inputs.size(0);
  torch::Tensor x = inputs;
  if (aug.hflip) {
    const torch::Tensor flip = torch::rand({n}, inputs.options()).lt(0.5).view({n, 1, 1, 1});
    x = torch::where(flip, x.flip(3), x);
  }
  if (aug.rotate_degrees > 0 || aug.translate > 0) {
    const auto dbl = torch::TensorOptions().dtype(torch::kDouble);
    const torch::Tensor radians =
        aug.rotate_degrees > 0 ? torch::empty({n}, dbl).uniform_(-aug.rotate_degrees, aug.rotate_degrees) * (M_PI / 180)
                               : torch::zeros({n}, dbl);
    const torch::Tensor shift =
        aug.translate > 0 ? torch::randint(-aug.translate, aug.translate + 1, {n, 2}, dbl) : torch::zeros({n, 2}, dbl);
    const double h = static_cast<double>(x.size(2)), w = static_cast<double>(x.size(3));
    // Output pixel -> input pixel: undo the shift, then the rotation. grid_sample pads with 0:
    // shift the values so that 0 is the background, then back.
    x = resample(x - background, radians, -shift.select(1, 0) * (2 / w), -shift.select(1, 1) * (2 / h)) + background;
  }
  if (aug.erase > 0) x = erase_boxes(x, aug.erase);
  return x;
}

torch::Tensor erase_boxes(const torch::Tensor& x, double p) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  // Every draw for the batch at once: whether, area, log aspect ratio, and place.
  const auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  const torch::Tensor draws = torch::rand({n, 5}, dbl);
  const auto d = draws.accessor<double, 2>();
  torch::Tensor out = x.clone();
  for (int64_t i = 0; i < n; ++i) {
    if (d[i][0] >= p) continue;
    const double area = (0.02 + d[i][1] * (0.33 - 0.02)) * static_cast<double>(h * w);
    const double ratio = std::exp(std::log(0.3) + d[i][2] * (std::log(3.3) - std::log(0.3)));
    const int64_t bh = std::clamp<int64_t>(std::llround(std::sqrt(area * ratio)), 1, h);
    const int64_t bw = std::clamp<int64_t>(std::llround(std::sqrt(area / ratio)), 1, w);
    const auto top = static_cast<int64_t>(d[i][3] * static_cast<double>(h - bh + 1));
    const auto left = static_cast<int64_t>(d[i][4] * static_cast<double>(w - bw + 1));
    out[i].narrow(1, top, bh).narrow(2, left, bw).zero_();
  }
  return out;
}

torch::Tensor draw_rotation_angles(int64_t n, double degrees) {
  torch::Tensor angles = torch::empty({n}, torch::kDouble);
  auto a = angles.accessor<double, 1>();
  for (int64_t i = 0; i < n; ++i) {
    // float(torch.empty(1).uniform_(-d, d).item()): a float32 draw, widened to double.
    a[i] = torch::empty({1}).uniform_(-degrees, degrees).item<float>();
  }
  return angles;
}

}  // namespace convkit::data
