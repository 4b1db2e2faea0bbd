#include "data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "util/error.h"
#include "util/files.h"

namespace convkit::data {
namespace {

bool is_gzip(const uint8_t* p, size_t n) { return n >= 2 && p[0] == 0x1f && p[1] == 0x8b; }

// Inflates `in`: one gzip member or several back to back, as gzip itself writes them, and
// nothing after them. Inflating stops after `max_out` bytes, which it returns.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& name, uint64_t max_out) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw file_error(name, "cannot initialise zlib");
  struct End {
    z_stream& zs;
    ~End() { inflateEnd(&zs); }
  } end{zs};
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  std::vector<uint8_t> out;
  out.reserve(std::min<uint64_t>(max_out, in.size() * 8));
  uint8_t chunk[1 << 16];
  for (;;) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR) {
      throw file_error(name, std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")");
    }
    const size_t produced = sizeof chunk - zs.avail_out;
    if (out.size() + produced > max_out) {
      out.insert(out.end(), chunk, chunk + (max_out - out.size()));
      return out;
    }
    out.insert(out.end(), chunk, chunk + produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) return out;
      if (!is_gzip(zs.next_in, zs.avail_in)) {
        throw file_error(name, std::to_string(zs.avail_in) + " bytes of garbage after the gzip data");
      }
      inflateReset(&zs);  // the next member
    } else if (rc == Z_BUF_ERROR || (zs.avail_in == 0 && zs.avail_out != 0)) {
      throw file_error(name, "truncated gzip stream (ends before its end marker)");
    }
  }
}

// The magic and up to 255 dimensions.
constexpr uint64_t kMaxIdxHeader = 4 + 4 * 255;

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(uint8_t(v >> shift));
}

// The decoded size an unsigned-byte IDX header declares (the header included, at most
// kMaxIdxBytes), or 0 when `header` is none or too short to tell.
uint64_t declared_size(const std::vector<uint8_t>& header) {
  if (header.size() < 4 || header[0] != 0 || header[1] != 0 || header[2] != 0x08) return 0;
  const size_t ndims = header[3];
  if (header.size() < 4 + 4 * ndims) return 0;
  uint64_t bytes = 1;
  for (size_t d = 0; d < ndims; ++d) bytes = std::min(bytes * read_be32(header.data() + 4 + 4 * d), kMaxIdxBytes);
  return std::min(4 + 4 * ndims + bytes, kMaxIdxBytes);
}

}  // namespace

std::vector<uint8_t> maybe_gunzip(std::vector<uint8_t> raw, const std::string& name) {
  if (!is_gzip(raw.data(), raw.size())) return raw;
  // Inflate no more than the IDX header declares (plus a byte, so that trailing data is still
  // reported as such): a small file cannot inflate into all of memory.
  const uint64_t declared = declared_size(gunzip(raw, name, kMaxIdxHeader));
  return gunzip(raw, name, declared > 0 ? declared + 1 : kMaxIdxHeader);
}

IdxArray read_idx(const std::filesystem::path& file, uint32_t expected_magic) {
  return parse_idx(read_file_bytes(file, kMaxIdxBytes + kMaxIdxHeader), file.string(), expected_magic);
}

IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& name, uint32_t expected_magic) {
  std::vector<uint8_t> buf = maybe_gunzip(std::move(bytes), name);
  if (buf.size() < 4) throw file_error(name, "too short for an IDX header (" + std::to_string(buf.size()) + " bytes)");

  const uint32_t magic = read_be32(buf.data());
  if (magic != expected_magic) {
    throw file_error(name, "wrong IDX magic " + std::to_string(magic) + ", expected " + std::to_string(expected_magic) +
                               (expected_magic == kIdxImagesMagic ? " (images)" : " (labels)"));
  }
  const size_t ndims = magic & 0xff;
  const size_t header = 4 + 4 * ndims;
  if (buf.size() < header) throw file_error(name, "truncated IDX header");

  IdxArray out;
  uint64_t expected_bytes = 1;
  for (size_t d = 0; d < ndims; ++d) {
    const uint32_t n = read_be32(buf.data() + 4 + 4 * d);
    if (n == 0) throw file_error(name, "dimension " + std::to_string(d) + " is zero");
    out.dims.push_back(n);
    expected_bytes *= n;
    if (expected_bytes > kMaxIdxBytes) {
      throw file_error(name, "declares more than " + std::to_string(kMaxIdxBytes) + " bytes of data");
    }
  }
  const uint64_t present = buf.size() - header;
  if (present < expected_bytes) {
    throw file_error(name, "truncated: header declares " + std::to_string(expected_bytes) + " data bytes but only " +
                               std::to_string(present) + " are present");
  }
  if (present > expected_bytes) {
    throw file_error(name, std::to_string(present - expected_bytes) + " trailing bytes after the declared data");
  }
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(header));  // in place: no second copy
  out.bytes = std::move(buf);
  return out;
}

std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& stem) {
  if (!std::filesystem::is_directory(dir)) throw file_error(dir.string(), "data directory does not exist");
  for (const auto& candidate : {dir / stem, dir / (stem + ".gz")}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw file_error((dir / stem).string(), "missing (looked for " + stem + " and " + stem + ".gz)");
}

void write_idx(const std::filesystem::path& file, uint32_t magic, const std::vector<int64_t>& dims,
               const std::vector<uint8_t>& bytes) {
  std::vector<uint8_t> out;
  put_be32(out, magic);
  for (int64_t d : dims) put_be32(out, static_cast<uint32_t>(d));
  out.insert(out.end(), bytes.begin(), bytes.end());
  if (file.extension() != ".gz") return write_file_atomically(file, std::string(out.begin(), out.end()));
  write_atomically_via(file, [&](const std::filesystem::path& tmp) {
    gzFile gz = gzopen(tmp.string().c_str(), "wb");
    if (!gz) throw file_error(file.string(), "cannot open for writing");
    const int written = gzwrite(gz, out.data(), static_cast<unsigned>(out.size()));
    const int closed = gzclose(gz);
    if (written != static_cast<int>(out.size()) || closed != Z_OK) throw file_error(file.string(), "gzip write failed");
  });
}

}  // namespace convkit::data
