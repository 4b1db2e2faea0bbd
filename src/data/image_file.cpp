#include "data/image_file.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>

#include "util/error.h"
#include "util/files.h"

namespace convkit::data {
namespace {

bool starts_with(const std::vector<uint8_t>& b, std::initializer_list<uint8_t> magic) {
  return b.size() >= magic.size() && std::equal(magic.begin(), magic.end(), b.begin());
}

// stb_image decodes more formats than convkit reads (Photoshop, Radiance HDR, Softimage PIC);
// those are refused rather than handed to decoders nobody here relies on.
bool is_unsupported_format(const std::vector<uint8_t>& b) {
  return starts_with(b, {'8', 'B', 'P', 'S'}) || starts_with(b, {'#', '?'}) || starts_with(b, {0x53, 0x80, 0xf6, 0x34});
}

// stb_image 2.27 (Debian 12's) trusts the code counts of a JPEG's Huffman tables: more than 256
// codes in one table write past its buffers. Such a file is corrupt. This walks the markers as
// stb does, tables that run past their segment included, and says whether every table fits.
bool jpeg_huffman_tables_fit(const std::vector<uint8_t>& b) {
  auto at = [&](size_t i) -> unsigned { return i < b.size() ? b[i] : 0; };
  // Start of image: 0xd8 after one or more 0xff, as stb reads markers.
  size_t i = 0;
  while (at(i) == 0xff) ++i;
  if (i == 0 || at(i) != 0xd8) return true;  // not a JPEG
  ++i;
  while (i + 4 <= b.size()) {
    const unsigned marker = at(i + 1);
    if (at(i) != 0xff || marker == 0xff) {  // entropy-coded data, or a fill byte
      ++i;
      continue;
    }
    if (marker == 0x00 || marker == 0x01 || (marker >= 0xd0 && marker <= 0xd9)) {  // no length
      i += 2;
      continue;
    }
    const size_t length = at(i + 2) << 8 | at(i + 3);
    if (marker == 0xc4) {
      size_t p = i + 4;
      for (int64_t left = static_cast<int64_t>(length) - 2; left > 0;) {
        size_t codes = 0;
        for (size_t k = 1; k <= 16; ++k) codes += at(p + k);
        if (codes > 256) return false;
        p += 17 + codes;
        left -= static_cast<int64_t>(17 + codes);
      }
    }
    i += 2 + length;
  }
  return true;
}

}  // namespace

GreyImage read_grey_image(const std::filesystem::path& file) {
  return decode_grey_image(read_file_bytes(file, kMaxImageFileBytes), file.string());
}

GreyImage decode_grey_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() > kMaxImageFileBytes) throw file_error(name, "image file is too large");
  if (is_unsupported_format(bytes))
    throw file_error(name, "unsupported image format (use PNG, JPEG, BMP, GIF, PNM or TGA)");
  if (!jpeg_huffman_tables_fit(bytes)) throw file_error(name, "cannot decode image (corrupt JPEG Huffman table)");
  int w = 0, h = 0, channels = 0;
  // The size from the header first: a small file may declare an enormous picture, and
  // to_mnist_pixels pads it to a square of its longer side.
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels) &&
      static_cast<uint64_t>(std::max(w, h)) * static_cast<uint64_t>(std::max(w, h)) > kMaxImagePixels) {
    throw file_error(name, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                               " pixels is too large (its square may have at most " + std::to_string(kMaxImagePixels) +
                               " pixels)");
  }
  uint8_t* data = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 1);
  if (!data) {
    const char* reason = stbi_failure_reason();  // may be null
    throw file_error(name, std::string("cannot decode image (") + (reason ? reason : "unknown reason") + ")");
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

}  // namespace convkit::data
