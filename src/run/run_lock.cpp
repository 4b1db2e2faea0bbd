#include "run/run_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "util/error.h"

namespace convkit::run {

RunLock::RunLock(const std::filesystem::path& dir) {
  const std::filesystem::path file = dir / ".lock";
  fd_ = open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0) throw file_error(file.string(), std::string("cannot create the run's lock: ") + std::strerror(errno));
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    char pid[32] = {};
    const ssize_t n = pread(fd_, pid, sizeof pid - 1, 0);
    close(fd_);
    const std::string holder = n > 0 ? std::string(pid, static_cast<size_t>(n)) : "unknown";
    throw file_error(dir.string(), "in use by another convkit process (PID " + holder +
                                       "); wait for it to finish or choose another --out");
  }
  const std::string pid = std::to_string(getpid());
  // The PID only serves the message a refused writer prints; the lock holds without it.
  if (ftruncate(fd_, 0) == 0) (void)!pwrite(fd_, pid.data(), pid.size(), 0);
}

RunLock::~RunLock() {
  if (fd_ >= 0) close(fd_);
}

}  // namespace convkit::run
