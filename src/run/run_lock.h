// One writer per run directory: a second `convkit train` (or `report`) on the same directory
// is refused instead of mixing its files with the first one's.
#pragma once

#include <filesystem>

namespace convkit::run {

// Holds DIR/.lock (an advisory lock, released when the process ends however it ends, so a
// dead process's lock is simply taken over) for as long as it lives. An Error naming the
// directory and the PID of the process that holds it otherwise.
class RunLock {
 public:
  explicit RunLock(const std::filesystem::path& dir);
  ~RunLock();
  RunLock(const RunLock&) = delete;
  RunLock& operator=(const RunLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace convkit::run
