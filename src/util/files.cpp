#include "util/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "util/error.h"

namespace convkit {

namespace {

void check_is_regular(const std::filesystem::path& file, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) throw file_error(file.string(), "is a directory, expected a file");
  if (!S_ISREG(st.st_mode)) throw file_error(file.string(), "is not a regular file (a pipe or a device?)");
}

}  // namespace

void require_regular_file(const std::filesystem::path& file) {
  struct stat st {};
  if (stat(file.c_str(), &st) != 0)
    throw file_error(file.string(), std::string("cannot open: ") + std::strerror(errno));
  check_is_regular(file, st);
}

std::vector<uint8_t> read_file_bytes(const std::filesystem::path& file, uint64_t max_bytes) {
  // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
  const int fd = open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw file_error(file.string(), std::string("cannot open: ") + std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{fd};
  struct stat st {};
  if (fstat(fd, &st) != 0) throw file_error(file.string(), std::string("cannot read: ") + std::strerror(errno));
  check_is_regular(file, st);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size > max_bytes) {
    throw file_error(file.string(),
                     "is " + std::to_string(size) + " bytes, more than the limit of " + std::to_string(max_bytes));
  }
  std::vector<uint8_t> bytes(size);
  size_t done = 0;
  while (done < size) {
    const ssize_t n = read(fd, bytes.data() + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw file_error(file.string(), std::string("cannot read: ") + std::strerror(errno));
    if (n == 0) throw file_error(file.string(), "shrank while being read");
    done += static_cast<size_t>(n);
  }
  return bytes;
}

nlohmann::json read_json_file(const std::filesystem::path& file) {
  const std::vector<uint8_t> raw = read_file_bytes(file, kMaxJsonBytes);
  try {
    return nlohmann::json::parse(raw.begin(), raw.end());
  } catch (const nlohmann::json::exception& e) {
    // Not only parse_error: a number too large for a double is out_of_range (406).
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
    out.close();
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
