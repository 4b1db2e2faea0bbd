// Wall-clock seconds since a start point, for the epoch and run timings.
#pragma once

#include <chrono>

namespace convkit {

class Stopwatch {
 public:
  double seconds() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

}  // namespace convkit
