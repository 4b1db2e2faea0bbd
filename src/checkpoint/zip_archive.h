// A zip archive (torch.save's format) read with every size checked against the file before
// memory is allocated for it. LibTorch's reader is not used for input: it allocates what a
// record declares, and leaks its state when the archive it opens is not a PyTorch one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace convkit::checkpoint {

struct ZipEntry {
  uint16_t method = 0;  // 0: stored (what torch.save writes), 8: deflated
  uint16_t flags = 0;
  uint32_t crc32 = 0;
  uint64_t compressed = 0, uncompressed = 0, local_header = 0;
};

// Deflated records together may inflate to at most this: torch.save stores its records
// uncompressed, so only an archive re-packed by another tool has compressed ones.
inline constexpr uint64_t kMaxDeflatedBytes = uint64_t{256} << 20;

class ZipArchive {
 public:
  // Reads the central directory (zip64 included) and checks every record's declared sizes: an
  // Error naming the file when the directory is missing, truncated or implausible for the
  // file's size, when a stored record's sizes disagree, or when deflated records declare more
  // than kMaxDeflatedBytes in all. Then no record costs more memory than the file's size or
  // that bound.
  explicit ZipArchive(const std::filesystem::path& file);

  // Records by name as the archive spells it ("archive/data.pkl"), and the directory's first.
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }
  const std::string& first_name() const { return first_name_; }
  bool has(const std::string& name) const { return entries_.count(name) != 0; }

  // A record's bytes, inflated if deflated and checked against its CRC-32; an Error naming
  // the file and the record when it is absent, encrypted, of another method, or corrupt.
  std::vector<uint8_t> read(const std::string& name) const;

 private:
  std::filesystem::path file_;
  uint64_t size_ = 0;
  std::map<std::string, ZipEntry> entries_;
  std::string first_name_;
};

}  // namespace convkit::checkpoint
