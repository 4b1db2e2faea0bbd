#include "data/image.h"

#include <torch/torch.h>

#include <cstring>

#include "data/dataset.h"
#include "util/error.h"

namespace convkit::data {

Invert parse_invert(const std::string& value) {
  if (value == "auto") return Invert::Auto;
  if (value == "yes") return Invert::Yes;
  if (value == "no") return Invert::No;
  throw Error("--invert: expected auto, yes or no, got '" + value + "'");
}

bool has_light_background(const Picture& image) {
  double sum = 0;
  int64_t count = 0;
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      if (y == 0 || x == 0 || y == image.height - 1 || x == image.width - 1) {
        const uint8_t* p = &image.pixels[(static_cast<size_t>(y) * image.width + x) * image.channels];
        sum += image.channels == 1 ? p[0] : grey_from_rgb(p);
        ++count;
      }
    }
  }
  return count > 0 && sum / count > 127.5;
}

void copy_planar(const Picture& image, uint8_t* out) {
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  if (image.channels == 1) {
    std::memcpy(out, image.pixels.data(), plane);
    return;
  }
  for (size_t p = 0; p < plane; ++p)
    for (int c = 0; c < image.channels; ++c) out[c * plane + p] = image.pixels[p * image.channels + c];
}

torch::Tensor picture_tensor(const Picture& image) {
  torch::Tensor planes = torch::empty({image.channels, image.height, image.width}, torch::kUInt8);
  copy_planar(image, planes.data_ptr<uint8_t>());
  return planes;
}

torch::Tensor to_model_pixels(const Picture& image, Invert invert, ImageShape shape) {
  torch::Tensor x = convert_channels(picture_tensor(image).unsqueeze(0), shape.channels).to(torch::kFloat);
  const bool grey = shape.channels == 1;
  const bool flip = invert == Invert::Yes || (invert == Invert::Auto && grey && has_light_background(image));
  if (flip) x = 255 - x;
  namespace F = torch::nn::functional;
  if (!grey) return resize_images(x.round().to(torch::kUInt8), shape.height, shape.width)[0].to(torch::kFloat);
  // Pad the short side so the object keeps its proportions; after inversion the background is dark.
  const int64_t side = std::max(image.width, image.height);
  const int64_t pad_x = side - image.width, pad_y = side - image.height;
  x = torch::constant_pad_nd(x, {pad_x / 2, pad_x - pad_x / 2, pad_y / 2, pad_y - pad_y / 2}, 0);
  auto options = F::InterpolateFuncOptions().size(std::vector<int64_t>{shape.height, shape.width});
  if (side >= std::max(shape.height, shape.width)) {
    options.mode(torch::kArea);
  } else {
    options.mode(torch::kBilinear).align_corners(false);
  }
  return F::interpolate(x, options)[0].clamp(0, 255);
}

}  // namespace convkit::data
