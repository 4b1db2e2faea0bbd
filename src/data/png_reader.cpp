#include "data/png_reader.h"

#include <png.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "util/error.h"

namespace convkit::data {
namespace {

constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
// Ancillary chunks (text, ICC profiles) are read into memory whole, compressed ones inflated:
// this bounds each of them.
constexpr png_alloc_size_t kMaxChunkBytes = png_alloc_size_t{8} << 20;

struct Source {
  const uint8_t* data;
  size_t size;
  size_t position;
};

struct Failure {
  char message[256] = "unknown reason";
};

void read_from_memory(png_structp png, png_bytep out, size_t count) {
  auto* source = static_cast<Source*>(png_get_io_ptr(png));
  if (count > source->size - source->position) png_error(png, "file is truncated");
  std::memcpy(out, source->data + source->position, count);
  source->position += count;
}

// libpng reports errors by longjmp; the message is kept for the Error thrown after the jump.
[[noreturn]] void keep_error(png_structp png, png_const_charp message) {
  auto* failure = static_cast<Failure*>(png_get_error_ptr(png));
  std::snprintf(failure->message, sizeof failure->message, "%s", message);
  png_longjmp(png, 1);
}

void ignore_warning(png_structp, png_const_charp) {}

struct ReadStruct {
  png_structp png = nullptr;
  png_infop info = nullptr;
  ~ReadStruct() { png_destroy_read_struct(&png, info ? &info : nullptr, nullptr); }
};

struct Layout {
  int width = 0, height = 0, channels = 0;
  size_t row_bytes = 0;
};

// The two functions that call setjmp hold only trivially destructible objects, so libpng's
// longjmp back into them skips no destructor.
bool read_layout(png_structp png, png_infop info, Layout& layout) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_info(png, info);
  const int colour = png_get_color_type(png, info);
  if (colour == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (colour == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  layout.width = static_cast<int>(png_get_image_width(png, info));
  layout.height = static_cast<int>(png_get_image_height(png, info));
  layout.channels = png_get_channels(png, info);
  layout.row_bytes = png_get_rowbytes(png, info);
  return true;
}

bool read_rows(png_structp png, png_bytepp rows) {
  if (setjmp(png_jmpbuf(png))) return false;
  png_read_image(png, rows);
  png_read_end(png, nullptr);
  return true;
}

}  // namespace

bool is_png(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= sizeof kSignature && std::equal(std::begin(kSignature), std::end(kSignature), bytes.begin());
}

PngPixels decode_png(const std::vector<uint8_t>& bytes, const std::string& name,
                     const std::function<void(int width, int height)>& check_size) {
  Failure failure;
  const auto error = [&] {
    return file_error(name, std::string("cannot decode image (PNG: ") + failure.message + ")");
  };
  ReadStruct read;
  read.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &failure, keep_error, ignore_warning);
  if (read.png) read.info = png_create_info_struct(read.png);
  if (!read.info) throw file_error(name, "cannot decode image (libpng did not start)");
  Source source{bytes.data(), bytes.size(), 0};
  png_set_read_fn(read.png, &source, read_from_memory);
  // The size is judged by check_size; libpng's own limit (a million pixels a side) must not
  // answer first with another message.
  png_set_user_limits(read.png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  png_set_chunk_malloc_max(read.png, kMaxChunkBytes);

  Layout layout;
  if (!read_layout(read.png, read.info, layout)) throw error();
  check_size(layout.width, layout.height);
  if (layout.channels != 1 && layout.channels != 3)
    throw file_error(name, "cannot decode image (PNG of " + std::to_string(layout.channels) + " channels)");
  if (layout.row_bytes != static_cast<size_t>(layout.width) * layout.channels)
    throw file_error(name, "cannot decode image (PNG rows of an unexpected size)");

  PngPixels image{layout.width, layout.height, layout.channels,
                  std::vector<uint8_t>(layout.row_bytes * static_cast<size_t>(layout.height))};
  std::vector<png_bytep> rows(static_cast<size_t>(layout.height));
  for (size_t y = 0; y < rows.size(); ++y) rows[y] = image.pixels.data() + y * layout.row_bytes;
  if (!read_rows(read.png, rows.data())) throw error();
  return image;
}

}  // namespace convkit::data
