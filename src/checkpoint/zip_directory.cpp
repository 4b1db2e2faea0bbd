#include "checkpoint/zip_directory.h"

#include <algorithm>
#include <fstream>
#include <vector>

#include "util/error.h"

namespace convkit::checkpoint {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50, kZip64Locator = 0x07064b50, kZip64End = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr size_t kEndRecordBytes = 22, kMaxCommentBytes = 0xffff;
constexpr uint64_t kMaxDirectoryBytes = uint64_t{64} << 20;

class Bytes {
 public:
  Bytes(std::vector<uint8_t> data, std::string file) : data_(std::move(data)), file_(std::move(file)) {}
  uint64_t get(size_t pos, int width) const {
    if (pos + width > data_.size()) throw file_error(file_, "zip directory is truncated");
    uint64_t v = 0;
    for (int i = width - 1; i >= 0; --i) v = v << 8 | data_[pos + i];
    return v;
  }
  std::string text(size_t pos, size_t n) const {
    if (pos + n > data_.size()) throw file_error(file_, "zip directory is truncated");
    return std::string(data_.begin() + pos, data_.begin() + pos + n);
  }
  size_t size() const { return data_.size(); }

 private:
  std::vector<uint8_t> data_;
  std::string file_;
};

Bytes read_range(std::ifstream& in, uint64_t offset, uint64_t n, const std::string& file) {
  std::vector<uint8_t> data(n);
  in.seekg(static_cast<std::streamoff>(offset));
  if (!in.read(reinterpret_cast<char*>(data.data()), static_cast<std::streamsize>(n)))
    throw file_error(file, "cannot read the zip directory");
  return Bytes(std::move(data), file);
}

// Zip64's extra field holds, in this order, whichever of the sizes are 0xffffffff in the entry.
void apply_zip64_sizes(const Bytes& cd, size_t extra, size_t extra_len, ZipEntry& e) {
  for (size_t p = extra; p + 4 <= extra + extra_len;) {
    const uint64_t id = cd.get(p, 2), len = cd.get(p + 2, 2);
    if (id == 1) {
      size_t q = p + 4;
      if (e.uncompressed == 0xffffffff) e.uncompressed = cd.get(q, 8), q += 8;
      if (e.compressed == 0xffffffff) e.compressed = cd.get(q, 8);
      return;
    }
    p += 4 + len;
  }
}

}  // namespace

std::map<std::string, ZipEntry> read_zip_directory(const std::filesystem::path& path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(file, "cannot open");
  const uint64_t size = std::filesystem::file_size(path);
  if (size < kEndRecordBytes) throw file_error(file, "not a zip archive (too short)");

  const uint64_t tail_bytes = std::min<uint64_t>(size, kEndRecordBytes + kMaxCommentBytes);
  const Bytes tail = read_range(in, size - tail_bytes, tail_bytes, file);
  size_t end = tail.size() - kEndRecordBytes + 1;
  do {
    if (end-- == 0) throw file_error(file, "not a zip archive (no end of central directory)");
  } while (tail.get(end, 4) != kEndOfDirectory);

  uint64_t entries = tail.get(end + 10, 2), cd_bytes = tail.get(end + 12, 4), cd_offset = tail.get(end + 16, 4);
  if ((entries == 0xffff || cd_bytes == 0xffffffff || cd_offset == 0xffffffff) && end >= 20 &&
      tail.get(end - 20, 4) == kZip64Locator) {
    const uint64_t zip64_end = tail.get(end - 20 + 8, 8);
    if (zip64_end > size - 56) throw file_error(file, "zip64 directory record lies outside the file");
    const Bytes z = read_range(in, zip64_end, 56, file);
    if (z.get(0, 4) != kZip64End) throw file_error(file, "corrupt zip64 directory record");
    entries = z.get(32, 8), cd_bytes = z.get(40, 8), cd_offset = z.get(48, 8);
  }
  if (cd_bytes > kMaxDirectoryBytes || cd_offset > size || cd_bytes > size - cd_offset)
    throw file_error(file, "zip directory is implausible for a file of " + std::to_string(size) + " bytes");

  const Bytes cd = read_range(in, cd_offset, cd_bytes, file);
  std::map<std::string, ZipEntry> out;
  size_t p = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (cd.get(p, 4) != kDirectoryEntry) throw file_error(file, "corrupt zip directory entry");
    ZipEntry e;
    e.method = static_cast<uint16_t>(cd.get(p + 10, 2));
    e.compressed = cd.get(p + 20, 4);
    e.uncompressed = cd.get(p + 24, 4);
    const size_t name_len = cd.get(p + 28, 2), extra_len = cd.get(p + 30, 2), comment_len = cd.get(p + 32, 2);
    const std::string name = cd.text(p + 46, name_len);
    apply_zip64_sizes(cd, p + 46 + name_len, extra_len, e);
    if (e.compressed > size) throw file_error(file, "zip record '" + name + "' is larger than the file");
    out[name] = e;
    p += 46 + name_len + extra_len + comment_len;
  }
  return out;
}

void check_record_sizes(const std::map<std::string, ZipEntry>& directory, const std::string& file) {
  uint64_t inflated = 0;
  for (const auto& [name, e] : directory) {
    if (e.method == 0 && e.compressed != e.uncompressed)
      throw file_error(file, "zip record '" + name + "' is stored but declares " + std::to_string(e.uncompressed) +
                                 " bytes for " + std::to_string(e.compressed));
    if (e.method != 0) inflated += std::min(e.uncompressed, kMaxDeflatedBytes + 1);
    if (inflated > kMaxDeflatedBytes)
      throw file_error(file, "zip record '" + name + "' would inflate the checkpoint's compressed records past " +
                                 std::to_string(kMaxDeflatedBytes >> 20) + " MiB");
  }
}

}  // namespace convkit::checkpoint
