#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

namespace convkit {

Progress::Progress(std::string label, int64_t total_items, bool enabled)
    : label_(std::move(label)),
      total_(total_items),
      enabled_(enabled && stdout_is_terminal()),
      start_(std::chrono::steady_clock::now()),
      last_draw_(start_) {}

Progress::~Progress() { finish(); }

bool Progress::stdout_is_terminal() { return isatty(STDOUT_FILENO) == 1; }

void Progress::advance(int64_t items) {
  done_ += items;
  if (!enabled_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ < std::chrono::milliseconds(100) && done_ < total_) return;
  last_draw_ = now;
  const double elapsed = std::chrono::duration<double>(now - start_).count();
  const double rate = elapsed > 0 ? done_ / elapsed : 0.0;
  const double eta = rate > 0 ? (total_ - done_) / rate : 0.0;
  const int width = 30;
  const int filled = total_ > 0 ? static_cast<int>(width * done_ / total_) : width;
  std::printf("\r%-10s [%s%s] %6.1f%% %8.0f img/s ETA %4.1fs", label_.c_str(), std::string(filled, '#').c_str(),
              std::string(width - filled, '.').c_str(), total_ > 0 ? 100.0 * done_ / total_ : 100.0, rate, eta);
  std::fflush(stdout);
}

void Progress::finish() {
  if (!enabled_) return;
  std::printf("\r\033[K");
  std::fflush(stdout);
  enabled_ = false;
}

}  // namespace convkit
