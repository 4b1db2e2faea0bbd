// Image files read as grey pixels, within bounds checked before decoding: JPEG by libjpeg-turbo,
// PNG by libpng, BMP, PGM/PPM, GIF and TGA by stb_image. Colour turns grey as PIL's convert("L").
#pragma once

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

// The same for a file's contents; errors name `name`.
GreyImage decode_grey_image(const std::vector<uint8_t>& bytes, const std::string& name);

// Writes an 8-bit grey PNG atomically.
void write_grey_png(const std::filesystem::path& file, const GreyImage& image);

}  // namespace convkit::data
