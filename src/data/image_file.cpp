#include "data/image_file.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <turbojpeg.h>

#include <algorithm>
#include <climits>
#include <memory>

#include "data/png_reader.h"
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

// What stb_image would take for a JPEG: a start-of-image marker after one or more 0xff bytes.
// All of those go to libjpeg-turbo, so that stb's JPEG decoder (which in 2.27 overruns its
// Huffman tables and shifts past an int's width on corrupt data) never runs.
bool is_jpeg(const std::vector<uint8_t>& b) {
  size_t i = 0;
  while (i < b.size() && b[i] == 0xff) ++i;
  return i > 0 && i < b.size() && b[i] == 0xd8;
}

// stb_image 2.27 reads a PNM header's numbers into an int without an overflow check (undefined
// behaviour, and a negative size after it). This reads the header as stb does, comments and
// the end of the file included, and says whether width, height and maximum value fit an int.
bool pnm_header_numbers_fit(const std::vector<uint8_t>& b) {
  if (b.size() < 2 || b[0] != 'P' || (b[1] != '5' && b[1] != '6')) return true;  // not a PNM stb reads
  size_t next = 2;
  const auto at_end = [&] { return next >= b.size(); };
  const auto get = [&]() -> char { return at_end() ? 0 : static_cast<char>(b[next++]); };
  const auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
  };
  char c = get();
  const auto skip_space_and_comments = [&] {
    for (;;) {
      while (!at_end() && is_space(c)) c = get();
      if (at_end() || c != '#') return;
      while (!at_end() && c != '\n' && c != '\r') c = get();
    }
  };
  const auto number_fits = [&] {
    int value = 0;
    for (; !at_end() && c >= '0' && c <= '9'; c = get()) {
      if (value > (INT_MAX - (c - '0')) / 10) return false;
      value = value * 10 + (c - '0');
    }
    return true;
  };
  for (int field = 0; field < 3; ++field) {  // width, height, maximum value
    skip_space_and_comments();
    if (!number_fits()) return false;
  }
  return true;
}

// The size from the header first: a small file may declare an enormous picture, and
// to_mnist_pixels pads it to a square of its longer side.
void check_picture_size(int w, int h, const std::string& name) {
  const uint64_t side = static_cast<uint64_t>(std::max(w, h));
  if (side * side > kMaxImagePixels)
    throw file_error(name, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                               " pixels is too large (its square may have at most " + std::to_string(kMaxImagePixels) +
                               " pixels)");
}

// ITU-R 601 luma in PIL's fixed point (Image.convert("L")), so that a colour picture turns grey
// as torchvision's loaders turn it.
uint8_t grey_from_rgb(const uint8_t* rgb) {
  return static_cast<uint8_t>((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

// CMYK JPEGs store their samples inverted (Adobe's convention, which PIL and libjpeg assume):
// each colour is its stored value scaled by the stored black, with PIL's rounding, then luma.
uint8_t grey_from_inverted_cmyk(const uint8_t* cmyk) {
  const auto times_black = [&](unsigned colour) {
    const unsigned product = (255 - colour) * cmyk[3] + 128;  // PIL's MULDIV255
    return static_cast<uint8_t>(cmyk[3] - (((product >> 8) + product) >> 8));
  };
  const uint8_t rgb[3] = {times_black(cmyk[0]), times_black(cmyk[1]), times_black(cmyk[2])};
  return grey_from_rgb(rgb);
}

// Grey JPEGs are decoded as they are. Colour ones are decoded to RGB and turned grey as PIL does,
// rather than taking their luma plane: with subsampled chroma the two differ by many levels.
// Anything libjpeg-turbo warns about (a truncated file, corrupt data) is refused rather than
// half-decoded, and progressive files are limited in their number of scans.
GreyImage decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::unique_ptr<void, int (*)(tjhandle)> jpeg(tjInitDecompress(), tjDestroy);
  if (!jpeg) throw file_error(name, "cannot decode image (libjpeg-turbo did not start)");
  int w = 0, h = 0, subsampling = 0, colourspace = 0;
  if (tjDecompressHeader3(jpeg.get(), bytes.data(), bytes.size(), &w, &h, &subsampling, &colourspace) != 0)
    throw file_error(name, std::string("cannot decode image (JPEG: ") + tjGetErrorStr2(jpeg.get()) + ")");
  if (w <= 0 || h <= 0) throw file_error(name, "cannot decode image (JPEG of no pixels)");
  check_picture_size(w, h, name);
  const auto decode_as = [&](int pixel_format, int channels) {
    std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * channels);
    if (tjDecompress2(jpeg.get(), bytes.data(), bytes.size(), pixels.data(), w, 0, h, pixel_format,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
      throw file_error(name, std::string("cannot decode image (JPEG: ") + tjGetErrorStr2(jpeg.get()) + ")");
    return pixels;
  };
  GreyImage image{w, h, {}};
  if (colourspace == TJCS_GRAY) {
    image.pixels = decode_as(TJPF_GRAY, 1);
  } else if (colourspace == TJCS_CMYK || colourspace == TJCS_YCCK) {
    const std::vector<uint8_t> cmyk = decode_as(TJPF_CMYK, 4);
    image.pixels.resize(cmyk.size() / 4);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = grey_from_inverted_cmyk(&cmyk[4 * i]);
  } else {
    const std::vector<uint8_t> rgb = decode_as(TJPF_RGB, 3);
    image.pixels.resize(rgb.size() / 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = grey_from_rgb(&rgb[3 * i]);
  }
  return image;
}

GreyImage decode_png_as_grey(const std::vector<uint8_t>& bytes, const std::string& name) {
  PngPixels png = decode_png(bytes, name, [&](int w, int h) { check_picture_size(w, h, name); });
  if (png.channels == 1) return {png.width, png.height, std::move(png.pixels)};
  GreyImage image{png.width, png.height, std::vector<uint8_t>(static_cast<size_t>(png.width) * png.height)};
  for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = grey_from_rgb(&png.pixels[3 * i]);
  return image;
}

}  // namespace

GreyImage read_grey_image(const std::filesystem::path& file) {
  return decode_grey_image(read_file_bytes(file, kMaxImageFileBytes), file.string());
}

GreyImage decode_grey_image(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() > kMaxImageFileBytes) throw file_error(name, "image file is too large");
  if (is_unsupported_format(bytes))
    throw file_error(name, "unsupported image format (use PNG, JPEG, BMP, GIF, PNM or TGA)");
  if (is_jpeg(bytes)) return decode_jpeg(bytes, name);
  if (is_png(bytes)) return decode_png_as_grey(bytes, name);
  if (!pnm_header_numbers_fit(bytes))
    throw file_error(name, "cannot decode image (corrupt PNM header: a number overflows)");
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels))
    check_picture_size(w, h, name);
  // In the file's own channels, so that colour turns grey by PIL's rule rather than stb's.
  const std::unique_ptr<uint8_t, void (*)(void*)> data(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 0), stbi_image_free);
  if (!data) {
    const char* reason = stbi_failure_reason();  // may be null
    throw file_error(name, std::string("cannot decode image (") + (reason ? reason : "unknown reason") + ")");
  }
  GreyImage image{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h)};
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    const uint8_t* pixel = data.get() + i * channels;
    image.pixels[i] = channels >= 3 ? grey_from_rgb(pixel) : pixel[0];  // grey, or grey and alpha
  }
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
