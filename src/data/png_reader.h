// PNG files decoded by libpng: every bit depth, colour type and interlace, to 8-bit grey or RGB.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace convkit::data {

struct PngPixels {
  int width = 0, height = 0;
  int channels = 0;             // 1 (grey) or 3 (RGB)
  std::vector<uint8_t> pixels;  // row-major, channels interleaved
};

// Whether the bytes begin with PNG's eight-byte signature.
bool is_png(const std::vector<uint8_t>& bytes);

// Decodes a whole PNG file. Palettes are expanded to RGB, alpha is dropped, 16-bit samples keep
// their high byte and gamma is not applied, as PIL and OpenCV read them. `check_size(width,
// height)` sees the header's size before any pixel memory is allocated, and throws to refuse it.
// A truncated or corrupt file (a bad CRC in a critical chunk, no IEND) is an Error naming `name`.
PngPixels decode_png(const std::vector<uint8_t>& bytes, const std::string& name,
                     const std::function<void(int width, int height)>& check_size);

}  // namespace convkit::data
