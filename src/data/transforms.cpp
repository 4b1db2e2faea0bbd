#include "data/transforms.h"

#include <cmath>

namespace convkit::data {

torch::Tensor rotate(const torch::Tensor& pixels, const torch::Tensor& angles_degrees) {
  TORCH_CHECK(pixels.dim() == 4, "rotate expects [N,C,H,W]");
  TORCH_CHECK(angles_degrees.numel() == pixels.size(0), "rotate needs one angle per image");
  const int64_t n = pixels.size(0);
  const double h = static_cast<double>(pixels.size(2));
  const double w = static_cast<double>(pixels.size(3));
  const torch::Tensor radians = angles_degrees.to(torch::kDouble).reshape({n}) * (M_PI / 180.0);
  const torch::Tensor c = radians.cos();
  const torch::Tensor s = radians.sin();
  // affine_grid maps each output pixel (normalised coordinates, y pointing down) to where it
  // samples the input: the inverse of a counter-clockwise-on-screen rotation. The h/w factors
  // keep the rotation rigid on non-square images.
  const torch::Tensor theta = torch::stack({torch::stack({c, -s * (h / w), torch::zeros_like(c)}, 1),
                                            torch::stack({s * (w / h), c, torch::zeros_like(c)}, 1)},
                                           1)
                                  .to(pixels.dtype());
  const torch::Tensor grid = torch::nn::functional::affine_grid(theta, pixels.sizes().vec(), false);
  namespace F = torch::nn::functional;
  return F::grid_sample(pixels, grid,
                        F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false));
}

torch::Tensor augment(const torch::Tensor& inputs, const Augmentation& aug, float background) {
  if (!aug.enabled()) return inputs;
  const int64_t n = inputs.size(0);
  const double h = static_cast<double>(inputs.size(2)), w = static_cast<double>(inputs.size(3));
  torch::Tensor x = inputs;
  if (aug.hflip) {
    const torch::Tensor flip = torch::rand({n}, inputs.options()).lt(0.5).view({n, 1, 1, 1});
    x = torch::where(flip, x.flip(3), x);
  }
  if (aug.rotate_degrees > 0 || aug.translate > 0) {
    const auto dbl = torch::TensorOptions().dtype(torch::kDouble);
    const torch::Tensor radians = aug.rotate_degrees > 0
                                      ? torch::empty({n}, dbl).uniform_(-aug.rotate_degrees, aug.rotate_degrees) * (M_PI / 180)
                                      : torch::zeros({n}, dbl);
    const torch::Tensor shift = aug.translate > 0 ? torch::randint(-aug.translate, aug.translate + 1, {n, 2}, dbl)
                                                  : torch::zeros({n, 2}, dbl);
    const torch::Tensor c = radians.cos(), s = radians.sin();
    // Output pixel -> input pixel: undo the shift (in normalised units, 2/size per pixel), then the rotation.
    const torch::Tensor tx = -shift.select(1, 0) * (2 / w), ty = -shift.select(1, 1) * (2 / h);
    const torch::Tensor theta = torch::stack({torch::stack({c, -s * (h / w), tx}, 1),
                                              torch::stack({s * (w / h), c, ty}, 1)}, 1)
                                    .to(inputs.dtype()).to(inputs.device());
    namespace F = torch::nn::functional;
    const torch::Tensor grid = F::affine_grid(theta, x.sizes().vec(), false);
    // grid_sample pads with 0: shift so that 0 is the background, then back.
    x = F::grid_sample(x - background, grid,
                       F::GridSampleFuncOptions().mode(torch::kNearest).padding_mode(torch::kZeros).align_corners(false)) +
        background;
  }
  return x;
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
