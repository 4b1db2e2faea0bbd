// Image files read as grey or RGB pixels, within bounds checked before decoding: JPEG by
// libjpeg-turbo, PNG by libpng, BMP, PGM/PPM, GIF and TGA by stb_image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace convkit::data {

// A decoded picture: grey or RGB.
struct Picture {
  int width = 0, height = 0;
  std::vector<uint8_t> pixels;  // row-major, channels interleaved, 0 = black
  int channels = 1;             // 1 (grey) or 3 (RGB); alpha is dropped
};

// What a file's header says, before anything is decoded.
struct PictureHeader {
  int width = 0, height = 0;
  int channels = 1;  // 1 for grey files, 3 for colour (and palette) ones
};

// ITU-R 601 luma in PIL's fixed point (Image.convert("L")), so that colour turns grey as
// torchvision's loaders turn it: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
inline constexpr uint32_t kLumaRed = 19595, kLumaGreen = 38470, kLumaBlue = 7471, kLumaRounding = 0x8000;
inline uint8_t grey_from_rgb(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * kLumaRed + rgb[1] * kLumaGreen + rgb[2] * kLumaBlue + kLumaRounding) >> 16);
}

// Bounds on what is decoded: the file's size, and the square the picture is padded to.
inline constexpr uint64_t kMaxImageFileBytes = uint64_t{256} << 20;
inline constexpr uint64_t kMaxImagePixels = uint64_t{1} << 26;  // 8192 x 8192

// Any size within those bounds, in `channels` (0: the file's own; 1: colour turned grey as PIL's
// convert("L"); 3: grey repeated as RGB); an Error naming the file when it cannot be decoded or
// is too large.
Picture read_picture(const std::filesystem::path& file, int channels = 0);

// The same for a file's contents; errors name `name`.
Picture decode_picture(const std::vector<uint8_t>& bytes, const std::string& name, int channels = 0);

// The file's size and whether it is colour, read from its header; an Error naming the file when
// the header cannot be read or declares too large a picture.
PictureHeader read_picture_header(const std::filesystem::path& file);

// The same for a file's contents; errors name `name`.
PictureHeader decode_picture_header(const std::vector<uint8_t>& bytes, const std::string& name);

// Writes an 8-bit grey or RGB PNG atomically.
void write_png(const std::filesystem::path& file, const Picture& image);

}  // namespace convkit::data
