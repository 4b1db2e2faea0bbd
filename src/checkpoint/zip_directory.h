// The central directory of a zip archive (torch.save's format), read on its own so that every
// record's declared size is checked before LibTorch's reader allocates memory for it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

namespace convkit::checkpoint {

struct ZipEntry {
  uint16_t method = 0;  // 0: stored (what torch.save writes), 8: deflated
  uint64_t compressed = 0, uncompressed = 0;
};

// Entries by name as the archive spells it ("archive/data.pkl"), zip64 included. An Error
// naming the file when the directory is missing, truncated or implausible for the file's size.
std::map<std::string, ZipEntry> read_zip_directory(const std::filesystem::path& file);

// Deflated records together may inflate to at most this: torch.save stores its records
// uncompressed, so only an archive re-packed by another tool has compressed ones.
inline constexpr uint64_t kMaxDeflatedBytes = uint64_t{256} << 20;

// Refuses, naming the record, an archive whose records could make a reader allocate more than
// the file holds: a stored record whose sizes disagree, or deflated records declaring more
// than kMaxDeflatedBytes in all. Then no record costs more memory than the file's size or
// that bound.
void check_record_sizes(const std::map<std::string, ZipEntry>& directory, const std::string& file);

}  // namespace convkit::checkpoint
