#include "data/image_file.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <turbojpeg.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <cstring>
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
// to_model_pixels pads it to a square of its longer side.
void check_picture_size(int64_t w, int64_t h, const std::string& name) {
  if (w <= 0 || h <= 0) throw file_error(name, "cannot decode image (a header of no pixels)");
  const uint64_t side = static_cast<uint64_t>(std::max(w, h));
  if (side * side > kMaxImagePixels)
    throw file_error(name, "image of " + std::to_string(w) + "x" + std::to_string(h) +
                               " pixels is too large (its square may have at most " + std::to_string(kMaxImagePixels) +
                               " pixels)");
}

// CMYK JPEGs store their samples inverted (Adobe's convention, which PIL and libjpeg assume):
// each colour is its stored value scaled by the stored black, with PIL's rounding.
void rgb_from_inverted_cmyk(const uint8_t* cmyk, uint8_t* rgb) {
  const auto times_black = [&](unsigned colour) {
    const unsigned product = (255 - colour) * cmyk[3] + 128;  // PIL's MULDIV255
    return static_cast<uint8_t>(cmyk[3] - (((product >> 8) + product) >> 8));
  };
  for (int c = 0; c < 3; ++c) rgb[c] = times_black(cmyk[c]);
}

tjhandle start_jpeg(const std::string& name) {
  tjhandle jpeg = tjInitDecompress();
  if (!jpeg) throw file_error(name, "cannot decode image (libjpeg-turbo did not start)");
  return jpeg;
}

[[noreturn]] void jpeg_error(tjhandle jpeg, const std::string& name) {
  throw file_error(name, std::string("cannot decode image (JPEG: ") + tjGetErrorStr2(jpeg) + ")");
}

PictureHeader jpeg_header(tjhandle jpeg, const std::vector<uint8_t>& bytes, const std::string& name, int& colourspace) {
  int w = 0, h = 0, subsampling = 0;
  if (tjDecompressHeader3(jpeg, bytes.data(), bytes.size(), &w, &h, &subsampling, &colourspace) != 0)
    jpeg_error(jpeg, name);
  if (w <= 0 || h <= 0) throw file_error(name, "cannot decode image (JPEG of no pixels)");
  check_picture_size(w, h, name);
  return {w, h, colourspace == TJCS_GRAY ? 1 : 3};
}

// Grey JPEGs are decoded as they are, colour ones to RGB (turned grey later as PIL does, rather
// than by taking their luma plane: with subsampled chroma the two differ by many levels).
// Anything libjpeg-turbo warns about (a truncated file, corrupt data) is refused rather than
// half-decoded, and progressive files are limited in their number of scans.
Picture decode_jpeg(const std::vector<uint8_t>& bytes, const std::string& name) {
  const std::unique_ptr<void, int (*)(tjhandle)> jpeg(start_jpeg(name), tjDestroy);
  int colourspace = 0;
  const PictureHeader header = jpeg_header(jpeg.get(), bytes, name, colourspace);
  const int w = header.width, h = header.height;
  const auto decode_as = [&](int pixel_format, int channels) {
    std::vector<uint8_t> pixels(static_cast<size_t>(w) * h * channels);
    if (tjDecompress2(jpeg.get(), bytes.data(), bytes.size(), pixels.data(), w, 0, h, pixel_format,
                      TJFLAG_STOPONWARNING | TJFLAG_LIMITSCANS) != 0)
      jpeg_error(jpeg.get(), name);
    return pixels;
  };
  if (colourspace == TJCS_GRAY) return {w, h, decode_as(TJPF_GRAY, 1), 1};
  if (colourspace == TJCS_CMYK || colourspace == TJCS_YCCK) {
    const std::vector<uint8_t> cmyk = decode_as(TJPF_CMYK, 4);
    Picture image{w, h, std::vector<uint8_t>(cmyk.size() / 4 * 3), 3};
    for (size_t i = 0; i < cmyk.size() / 4; ++i) rgb_from_inverted_cmyk(&cmyk[4 * i], &image.pixels[3 * i]);
    return image;
  }
  return {w, h, decode_as(TJPF_RGB, 3), 3};
}

// PNG's IHDR, which its signature is always followed by: width, height, bit depth, colour type.
PictureHeader png_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() < 33 || std::string(bytes.begin() + 12, bytes.begin() + 16) != "IHDR")
    throw file_error(name, "cannot decode image (PNG: no IHDR chunk)");
  const auto be32 = [&](size_t at) {
    return (uint32_t{bytes[at]} << 24) | (uint32_t{bytes[at + 1]} << 16) | (uint32_t{bytes[at + 2]} << 8) |
           bytes[at + 3];
  };
  const uint32_t w = be32(16), h = be32(20);
  if (w == 0 || h == 0 || w > INT_MAX || h > INT_MAX)
    throw file_error(name, "cannot decode image (PNG: image of no pixels)");
  check_picture_size(w, h, name);
  const uint8_t colour_type = bytes[25];
  return {static_cast<int>(w), static_cast<int>(h), (colour_type & 2) ? 3 : 1};  // bit 2: colour or palette
}

Picture decode_png_file(const std::vector<uint8_t>& bytes, const std::string& name) {
  PngPixels png = decode_png(bytes, name, [&](int w, int h) { check_picture_size(w, h, name); });
  return {png.width, png.height, std::move(png.pixels), png.channels};
}

void check_stb_format(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (bytes.size() > kMaxImageFileBytes) throw file_error(name, "image file is too large");
  if (is_unsupported_format(bytes))
    throw file_error(name, "unsupported image format (use PNG, JPEG, BMP, GIF, PNM or TGA)");
  if (!pnm_header_numbers_fit(bytes))
    throw file_error(name, "cannot decode image (corrupt PNM header: a number overflows)");
}

[[noreturn]] void stb_error(const std::string& name) {
  const char* reason = stbi_failure_reason();  // may be null
  throw file_error(name, std::string("cannot decode image (") + (reason ? reason : "unknown reason") + ")");
}

// A BMP, GIF, TGA or PNM header as stb reads it. A file whose header stb cannot read is refused
// rather than decoded unchecked. stb 2.27 gives a top-down BMP's height as a negative number
// (its decoder takes the absolute value): the check is on what will be decoded.
PictureHeader stb_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  check_stb_format(bytes, name);
  int w = 0, h = 0, channels = 0;
  if (!stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels)) stb_error(name);
  const int64_t width = std::abs(static_cast<int64_t>(w)), height = std::abs(static_cast<int64_t>(h));
  check_picture_size(width, height, name);
  // stb reads past the end of a file as zeros, so a tiny file could make it fill a huge picture.
  // The best any of these formats compresses is GIF's LZW, about 2,700 pixels a byte.
  constexpr uint64_t kMaxPixelsPerByte = 4096;
  if (static_cast<uint64_t>(width * height) > bytes.size() * kMaxPixelsPerByte)
    throw file_error(name, "cannot decode image (a header of " + std::to_string(width) + "x" + std::to_string(height) +
                               " pixels in a file of " + std::to_string(bytes.size()) + " bytes: cut or corrupt)");
  return {static_cast<int>(width), static_cast<int>(height), channels >= 3 ? 3 : 1};
}

// BMP, GIF, TGA and PNM, in the file's own channels: grey (and alpha) or colour (and alpha).
Picture decode_with_stb(const std::vector<uint8_t>& bytes, const std::string& name) {
  stb_header(bytes, name);
  int w = 0, h = 0, channels = 0;
  const std::unique_ptr<uint8_t, void (*)(void*)> data(
      stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &w, &h, &channels, 0), stbi_image_free);
  if (!data) stb_error(name);
  const int kept = channels >= 3 ? 3 : 1;  // alpha dropped
  Picture image{w, h, std::vector<uint8_t>(static_cast<size_t>(w) * h * kept), kept};
  for (size_t i = 0; i < static_cast<size_t>(w) * h; ++i)
    std::memcpy(&image.pixels[i * kept], data.get() + i * channels, kept);
  return image;
}

Picture with_channels(Picture image, int channels) {
  if (channels == 0 || channels == image.channels) return image;
  const size_t n = static_cast<size_t>(image.width) * image.height;
  std::vector<uint8_t> out(n * channels);
  if (channels == 1) {
    for (size_t i = 0; i < n; ++i) out[i] = grey_from_rgb(&image.pixels[3 * i]);
  } else {
    for (size_t i = 0; i < n; ++i) std::memset(&out[3 * i], image.pixels[i], 3);
  }
  return {image.width, image.height, std::move(out), channels};
}

}  // namespace

Picture read_picture(const std::filesystem::path& file, int channels) {
  return decode_picture(read_file_bytes(file, kMaxImageFileBytes), file.string(), channels);
}

Picture decode_picture(const std::vector<uint8_t>& bytes, const std::string& name, int channels) {
  if (bytes.size() > kMaxImageFileBytes) throw file_error(name, "image file is too large");
  if (is_jpeg(bytes)) return with_channels(decode_jpeg(bytes, name), channels);
  if (is_png(bytes)) return with_channels(decode_png_file(bytes, name), channels);
  return with_channels(decode_with_stb(bytes, name), channels);
}

PictureHeader read_picture_header(const std::filesystem::path& file) {
  return decode_picture_header(read_file_bytes(file, kMaxImageFileBytes), file.string());
}

PictureHeader decode_picture_header(const std::vector<uint8_t>& bytes, const std::string& name) {
  if (is_jpeg(bytes)) {
    const std::unique_ptr<void, int (*)(tjhandle)> jpeg(start_jpeg(name), tjDestroy);
    int colourspace = 0;
    return jpeg_header(jpeg.get(), bytes, name, colourspace);
  }
  if (is_png(bytes)) return png_header(bytes, name);
  return stb_header(bytes, name);
}

void write_png(const std::filesystem::path& file, const Picture& image) {
  write_atomically_via(file, [&](const std::filesystem::path& tmp) {
    if (!stbi_write_png(tmp.string().c_str(), image.width, image.height, image.channels, image.pixels.data(),
                        image.width * image.channels)) {
      throw file_error(file.string(), "cannot write PNG");
    }
  });
}

}  // namespace convkit::data
