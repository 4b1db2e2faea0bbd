#include "util/files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace convkit {

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) throw file_error(file.string(), "is a directory, expected a file");
  std::ifstream in(file, std::ios::binary);
  if (!in) throw file_error(file.string(), std::string("cannot open: ") + std::strerror(errno));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

nlohmann::json read_json_file(const std::filesystem::path& file) {
  const std::vector<uint8_t> raw = read_file_bytes(file);
  try {
    return nlohmann::json::parse(raw.begin(), raw.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw file_error(file.string(), std::string("invalid JSON: ") + e.what());
  }
}

void write_atomically_via(const std::filesystem::path& file,
                          const std::function<void(const std::filesystem::path&)>& write) {
  std::filesystem::path tmp = file;
  tmp += ".tmp";
  try {
    write(tmp);
    std::filesystem::rename(tmp, file);
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(tmp, ignored);
    throw;
  }
}

void write_file_atomically(const std::filesystem::path& file, const std::string& contents) {
  write_atomically_via(file, [&](const std::filesystem::path& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw file_error(file.string(), std::string("cannot write: ") + std::strerror(errno));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) throw file_error(file.string(), "write failed (disk full?)");
  });
}

void ensure_writable_dir(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec || !std::filesystem::is_directory(dir)) {
    throw file_error(dir.string(), "cannot create output directory" + (ec ? ": " + ec.message() : std::string()));
  }
  const auto probe = dir / ".convkit-write-test";
  {
    std::ofstream out(probe);
    if (!out) throw file_error(dir.string(), "output directory is not writable");
  }
  std::filesystem::remove(probe, ec);
}

}  // namespace convkit
