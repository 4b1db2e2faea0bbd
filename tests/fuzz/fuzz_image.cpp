// libFuzzer target: image files (PNG, JPEG, BMP, GIF, TGA, PNM) decoded to grey pixels. Any
// input must end in an image or a convkit::Error within the decoder's bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/image_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const convkit::data::GreyImage image = convkit::data::decode_grey_image({data, data + size}, "fuzz");
    if (image.pixels.size() != static_cast<size_t>(image.width) * static_cast<size_t>(image.height)) __builtin_trap();
  } catch (const convkit::Error&) {
  }
  return 0;
}
