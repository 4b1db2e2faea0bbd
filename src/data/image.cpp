#include "data/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <torch/torch.h>

#include "data/dataset.h"
#include "util/error.h"
#include "util/files.h"

namespace convkit::data {

GreyImage read_grey_image(const std::filesystem::path& file) {
  const std::vector<uint8_t> bytes = read_file_bytes(file, kMaxImageFileBytes);
  int w = 0, h = 0, channels = 0;
  // The size from the header first: a small file may declare an enormous picture, and
  // to_mnist_pixels pads it to a square of its longer side.
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels) &&
      static_cast<uint64_t>(std::max(w, h)) * static_cast<uint64_t>(std::max(w, h)) > kMaxImagePixels) {
    throw file_error(file.string(), "image of " + std::to_string(w) + "x" + std::to_string(h) +
                                        " pixels is too large (its square may have at most " +
                                        std::to_string(kMaxImagePixels) + " pixels)");
  }
  uint8_t* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 1);
  if (!data) {
    const char* reason = stbi_failure_reason();  // may be null
    throw file_error(file.string(), std::string("cannot decode image (") + (reason ? reason : "unknown reason") + ")");
  }
  GreyImage image{w, h, std::vector<uint8_t>(data, data + static_cast<size_t>(w) * h)};
  stbi_image_free(data);
  return image;
}

void write_grey_png(const std::filesystem::path& file, const GreyImage& image) {
  write_atomically_via(file, [&](const std::filesystem::path& tmp) {
    if (!stbi_write_png(tmp.string().c_str(), image.width, image.height, 1, image.pixels.data(), image.width)) {
      throw file_error(file.string(), "cannot write PNG");
    }
  });
}

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
