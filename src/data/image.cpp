#include "data/image.h"

#include <torch/torch.h>

#include "data/dataset.h"
#include "util/error.h"

namespace convkit::data {

Invert parse_invert(const std::string& value) {
  if (value == "auto") return Invert::Auto;
  if (value == "yes") return Invert::Yes;
  if (value == "no") return Invert::No;
  throw Error("--invert: expected auto, yes or no, got '" + value + "'");
}

bool has_light_background(const GreyImage& image) {
  double sum = 0;
  int64_t count = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (y == 0 || x == 0 || y == image.height - 1 || x == image.width - 1) {
        sum += image.pixels[static_cast<size_t>(y) * image.width + x];
        ++count;
      }
    }
  }
  return count > 0 && sum / count > 127.5;
}

torch::Tensor resize_grey(const GreyImage& image, int64_t height, int64_t width) {
  const torch::Tensor x =
      torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {1, 1, image.height, image.width}, torch::kUInt8)
          .to(torch::kFloat);
  namespace F = torch::nn::functional;
  const auto options = F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{height, width})
                           .mode(torch::kBilinear)
                           .align_corners(false)
                           .antialias(true);
  return F::interpolate(x, options).round().clamp(0, 255).to(torch::kUInt8)[0][0].contiguous();
}

torch::Tensor to_mnist_pixels(const GreyImage& image, Invert invert) {
  const bool flip = invert == Invert::Yes || (invert == Invert::Auto && has_light_background(image));
  torch::Tensor x =
      torch::from_blob(const_cast<uint8_t*>(image.pixels.data()), {image.height, image.width}, torch::kUInt8)
          .to(torch::kFloat);
  if (flip) x = 255 - x;
  // Pad the short side so the object keeps its proportions; after inversion the background is dark.
  const int64_t side = std::max(image.width, image.height);
  const int64_t pad_x = side - image.width, pad_y = side - image.height;
  x = torch::constant_pad_nd(x, {pad_x / 2, pad_x - pad_x / 2, pad_y / 2, pad_y - pad_y / 2}, 0);
  namespace F = torch::nn::functional;
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{kImageSize, kImageSize});
  if (side >= kImageSize) {
    options.mode(torch::kArea);
  } else {
    options.mode(torch::kBilinear).align_corners(false);
  }
  return F::interpolate(x.unsqueeze(0).unsqueeze(0), options).squeeze(0).squeeze(0).clamp(0, 255);
}

}  // namespace convkit::data
