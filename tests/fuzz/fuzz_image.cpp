// libFuzzer target: image files (PNG, JPEG, BMP, GIF, TGA, PNM): their headers read, then decoded
// in their own channels and to grey. Any input must end in an image or a convkit::Error within
// the decoder's bounds.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/image_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<uint8_t> bytes(data, data + size);
  try {
    convkit::data::decode_picture_header(bytes, "fuzz");
  } catch (const convkit::Error&) {
  }
  for (const int channels : {0, 1}) {
    try {
      const convkit::data::Picture image = convkit::data::decode_picture(bytes, "fuzz", channels);
      if (image.pixels.size() !=
          static_cast<size_t>(image.width) * static_cast<size_t>(image.height) * static_cast<size_t>(image.channels))
        __builtin_trap();
    } catch (const convkit::Error&) {
    }
  }
  return 0;
}
