#include "data/idx.h"

#include <zlib.h>

#include <fstream>
#include <iterator>

#include "util/error.h"
#include "util/files.h"

namespace convkit::data {
namespace {

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const std::string& name) {
  z_stream zs{};
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) throw file_error(name, "cannot initialise zlib");
  zs.next_in = const_cast<Bytef*>(in.data());
  zs.avail_in = static_cast<uInt>(in.size());
  std::vector<uint8_t> out;
  out.reserve(in.size() * 4);
  uint8_t chunk[1 << 16];
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    zs.next_out = chunk;
    zs.avail_out = sizeof chunk;
    rc = inflate(&zs, Z_NO_FLUSH);
    if (rc == Z_DATA_ERROR || rc == Z_NEED_DICT || rc == Z_MEM_ERROR) {
      inflateEnd(&zs);
      throw file_error(name, std::string("corrupt gzip data (") + (zs.msg ? zs.msg : "zlib error") + ")");
    }
    out.insert(out.end(), chunk, chunk + (sizeof chunk - zs.avail_out));
    if (rc == Z_BUF_ERROR || (zs.avail_in == 0 && rc != Z_STREAM_END && zs.avail_out != 0)) {
      inflateEnd(&zs);
      throw file_error(name, "truncated gzip stream (ends before its end marker)");
    }
  }
  inflateEnd(&zs);
  return out;
}

uint32_t read_be32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

void put_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(uint8_t(v >> shift));
}

}  // namespace

std::vector<uint8_t> read_file_maybe_gzip(const std::filesystem::path& file) {
  std::vector<uint8_t> raw = read_file_bytes(file);
  if (raw.size() >= 2 && raw[0] == 0x1f && raw[1] == 0x8b) return gunzip(raw, file.string());
  return raw;
}

IdxArray read_idx(const std::filesystem::path& file, uint32_t expected_magic) {
  const std::string name = file.string();
  std::vector<uint8_t> buf = read_file_maybe_gzip(file);
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
    if (expected_bytes > (uint64_t(1) << 40)) throw file_error(name, "declared size is implausibly large");
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
