// Small file helpers shared by every reader and writer: nothing is ever left half-written.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace convkit {

// Readers refuse larger files before allocating anything: a dataset file is at most this big.
inline constexpr uint64_t kMaxFileBytes = uint64_t{8} << 30;
inline constexpr uint64_t kMaxJsonBytes = uint64_t{64} << 20;

// An Error naming `file` unless it is a regular file (not a directory, FIFO or device, which
// could block or never end).
void require_regular_file(const std::filesystem::path& file);

// The whole file; an Error naming it when it is not a regular file or larger than `max_bytes`.
std::vector<uint8_t> read_file_bytes(const std::filesystem::path& file, uint64_t max_bytes = kMaxFileBytes);

// The file parsed as JSON; an Error naming the file when it is missing, too large or not JSON.
nlohmann::json read_json_file(const std::filesystem::path& file);

// Writes `contents` to `file.tmp`, flushes, then renames over `file`.
void write_file_atomically(const std::filesystem::path& file, const std::string& contents);

// Same, for writers that need a path (e.g. LibTorch's serialisers): `write(tmp_path)` then rename.
void write_atomically_via(const std::filesystem::path& file,
                          const std::function<void(const std::filesystem::path&)>& write);

// Creates `dir` if needed and proves it is writable; an Error naming it otherwise.
void ensure_writable_dir(const std::filesystem::path& dir);

}  // namespace convkit
