#include "checkpoint/zip_archive.h"

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <vector>

#include "util/error.h"

namespace convkit::checkpoint {
namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50, kZip64Locator = 0x07064b50, kZip64End = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50, kLocalHeader = 0x04034b50;
constexpr size_t kLocalHeaderBytes = 30;
constexpr uint16_t kEncrypted = 1;
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

// Zip64's extra field holds, in this order, whichever of the sizes and the offset are
// 0xffffffff in the entry.
void apply_zip64_fields(const Bytes& cd, size_t extra, size_t extra_len, ZipEntry& e) {
  for (size_t p = extra; p + 4 <= extra + extra_len;) {
    const uint64_t id = cd.get(p, 2), len = cd.get(p + 2, 2);
    if (id == 1) {
      size_t q = p + 4;
      if (e.uncompressed == 0xffffffff) e.uncompressed = cd.get(q, 8), q += 8;
      if (e.compressed == 0xffffffff) e.compressed = cd.get(q, 8), q += 8;
      if (e.local_header == 0xffffffff) e.local_header = cd.get(q, 8);
      return;
    }
    p += 4 + len;
  }
}

void check_record_sizes(const std::map<std::string, ZipEntry>& entries, const std::string& file) {
  uint64_t inflated = 0;
  for (const auto& [name, e] : entries) {
    if (e.method == 0 && e.compressed != e.uncompressed)
      throw file_error(file, "zip record '" + name + "' is stored but declares " + std::to_string(e.uncompressed) +
                                 " bytes for " + std::to_string(e.compressed));
    if (e.method != 0) inflated += std::min(e.uncompressed, kMaxDeflatedBytes + 1);
    if (inflated > kMaxDeflatedBytes)
      throw file_error(file, "zip record '" + name + "' would inflate the checkpoint's compressed records past " +
                                 std::to_string(kMaxDeflatedBytes >> 20) + " MiB");
  }
}

// Raw deflate into exactly `out.size()` bytes: a stream that ends early or would go on is corrupt.
bool inflate_exactly(const std::vector<uint8_t>& in, std::vector<uint8_t>& out) {
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) return false;
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.next_out = out.data();
  int rc = Z_OK;
  size_t in_left = in.size(), out_left = out.size();
  // zlib counts in uInt: records past 4 GiB go in chunks. Z_BUF_ERROR (no progress) can then
  // only mean that the input or the output ran out before the stream's end.
  while (rc == Z_OK) {
    if (zs.avail_in == 0) zs.avail_in = static_cast<uInt>(std::min<size_t>(in_left, UINT_MAX));
    if (zs.avail_out == 0) zs.avail_out = static_cast<uInt>(std::min<size_t>(out_left, UINT_MAX));
    const uInt avail_in = zs.avail_in, avail_out = zs.avail_out;
    rc = inflate(&zs, Z_NO_FLUSH);
    in_left -= avail_in - zs.avail_in;
    out_left -= avail_out - zs.avail_out;
  }
  inflateEnd(&zs);
  return rc == Z_STREAM_END && out_left == 0;
}

}  // namespace

ZipArchive::ZipArchive(const std::filesystem::path& path) : file_(path) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(file, "cannot open");
  const uint64_t size = size_ = std::filesystem::file_size(path);
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
  size_t p = 0;
  for (uint64_t i = 0; i < entries; ++i) {
    if (cd.get(p, 4) != kDirectoryEntry) throw file_error(file, "corrupt zip directory entry");
    ZipEntry e;
    e.flags = static_cast<uint16_t>(cd.get(p + 8, 2));
    e.method = static_cast<uint16_t>(cd.get(p + 10, 2));
    e.crc32 = static_cast<uint32_t>(cd.get(p + 16, 4));
    e.compressed = cd.get(p + 20, 4);
    e.uncompressed = cd.get(p + 24, 4);
    e.local_header = cd.get(p + 42, 4);
    const size_t name_len = cd.get(p + 28, 2), extra_len = cd.get(p + 30, 2), comment_len = cd.get(p + 32, 2);
    const std::string name = cd.text(p + 46, name_len);
    apply_zip64_fields(cd, p + 46 + name_len, extra_len, e);
    if (e.compressed > size || e.local_header > size - e.compressed)
      throw file_error(file, "zip record '" + name + "' lies outside the file");
    if (!entries_.emplace(name, e).second) throw file_error(file, "zip record '" + name + "' appears twice");
    if (i == 0) first_name_ = name;
    p += 46 + name_len + extra_len + comment_len;
  }
  check_record_sizes(entries_, file);
}

std::vector<uint8_t> ZipArchive::read(const std::string& name) const {
  const std::string file = file_.string();
  const auto it = entries_.find(name);
  if (it == entries_.end()) throw file_error(file, "no zip record '" + name + "'");
  const ZipEntry& e = it->second;
  const auto fail = [&](const std::string& why) { return file_error(file, "zip record '" + name + "' " + why); };
  if (e.flags & kEncrypted) throw fail("is encrypted");
  if (e.method != 0 && e.method != 8) throw fail("uses compression method " + std::to_string(e.method));

  std::ifstream in(file_, std::ios::binary);
  if (!in) throw file_error(file, "cannot open");
  const Bytes header =
      read_range(in, e.local_header, std::min<uint64_t>(kLocalHeaderBytes, size_ - e.local_header), file);
  if (header.size() < kLocalHeaderBytes || header.get(0, 4) != kLocalHeader) throw fail("has no local header");
  const uint64_t data = e.local_header + kLocalHeaderBytes + header.get(26, 2) + header.get(28, 2);
  if (data > size_ || e.compressed > size_ - data) throw fail("is truncated");

  std::vector<uint8_t> raw(e.compressed);
  in.seekg(static_cast<std::streamoff>(data));
  if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
    throw fail("is truncated");
  std::vector<uint8_t> bytes;
  if (e.method == 0) {
    bytes = std::move(raw);
  } else {
    bytes.resize(e.uncompressed);
    if (!inflate_exactly(raw, bytes)) throw fail("does not inflate to its declared size");
  }
  uLong crc = crc32(0L, Z_NULL, 0);
  for (size_t done = 0; done < bytes.size();) {
    const uInt n = static_cast<uInt>(std::min<size_t>(bytes.size() - done, UINT_MAX));
    crc = crc32(crc, bytes.data() + done, n);
    done += n;
  }
  if (crc != e.crc32) throw fail("fails its CRC-32 check");
  return bytes;
}

}  // namespace convkit::checkpoint
