// IDX files (the MNIST container): magic, dimensions, then unsigned bytes.
// Reads raw or gzip-compressed files and validates everything a corrupt file can get wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace convkit::data {

inline constexpr uint32_t kIdxImagesMagic = 2051;  // 0x00000803: ubyte, 3 dimensions
inline constexpr uint32_t kIdxLabelsMagic = 2049;  // 0x00000801: ubyte, 1 dimension
// The most data one IDX file may hold (EMNIST's largest set has about a quarter of it).
inline constexpr uint64_t kMaxIdxBytes = uint64_t{2} << 30;

struct IdxArray {
  std::vector<int64_t> dims;   // e.g. {60000, 28, 28}
  std::vector<uint8_t> bytes;  // row-major, product(dims) bytes
};

// Parses and validates an IDX file whose magic must equal `expected_magic`.
IdxArray read_idx(const std::filesystem::path& file, uint32_t expected_magic);

// The same for the file's contents (raw or gzip); errors name `name`.
IdxArray parse_idx(std::vector<uint8_t> bytes, const std::string& name, uint32_t expected_magic);

// `raw` gunzipped when it starts with the gzip magic (one member or several, nothing after
// them), inflated no further than the IDX header it starts with declares: parse_idx reports a
// size that does not match.
std::vector<uint8_t> maybe_gunzip(std::vector<uint8_t> raw, const std::string& name);

// `dir/stem` or `dir/stem.gz`, whichever exists; an Error naming both when neither does.
std::filesystem::path find_idx_file(const std::filesystem::path& dir, const std::string& stem);

// Writes an IDX file (raw, or gzip when the name ends in .gz); used by tests and tools.
void write_idx(const std::filesystem::path& file, uint32_t magic, const std::vector<int64_t>& dims,
               const std::vector<uint8_t>& bytes);

}  // namespace convkit::data
