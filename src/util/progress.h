// A one-line progress bar with rate and ETA, drawn only when stdout is a terminal, so piped
// output stays the tutorial's plain lines.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace convkit {

class Progress {
 public:
  Progress(std::string label, int64_t total_items, bool enabled);
  ~Progress();
  void advance(int64_t items);  // redraws at most ~10 times a second
  void finish();                // erases the bar

  static bool stdout_is_terminal();

 private:
  std::string label_;
  int64_t total_, done_ = 0;
  bool enabled_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace convkit
