// Image files (PNG, JPEG, BMP, PGM/PPM, GIF, TGA via stb_image) turned into FashionMNIST-like
// inputs: grey, 28x28, a light object on a black background.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace convkit::data {

struct GreyImage {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major, 0 = black
};

// Bounds on what is decoded: the file's size, and the square the picture is padded to.
inline constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;
inline constexpr uint64_t kMaxImagePixels = uint64_t{1} << 26;  // 8192 x 8192

// Any size within those bounds, colour or grey; an Error naming the file when it cannot be
// decoded or is too large.
GreyImage read_grey_image(const std::filesystem::path& file);

// Writes an 8-bit grey PNG atomically.
void write_grey_png(const std::filesystem::path& file, const GreyImage& image);

enum class Invert { Auto, Yes, No };
Invert parse_invert(const std::string& value);  // "auto" | "yes" | "no"

// True when the border is mostly light, i.e. a photo of a dark object on a light background.
bool has_light_background(const GreyImage& image);

// Float [28,28] with raw 0..255 values: inverted if asked (or if Auto finds a light
// background), padded to a square with the background colour, then resized (area averaging
// when shrinking, bilinear when enlarging).
torch::Tensor to_mnist_pixels(const GreyImage& image, Invert invert);

}  // namespace convkit::data
