// Process-wide compute settings: one thread pool, and the device to run on.
#pragma once

#include <string>

namespace convkit {

// Sets LibTorch's intra-op threads to `requested` (<= 0: all cores) and pins OpenBLAS to one
// thread, so the two pools never oversubscribe the cores. Returns the thread count in use.
int configure_threads(int requested);

// "auto" -> "cuda" when this LibTorch build and a GPU allow it, else "cpu"; "cuda" without a
// GPU is an Error naming --device.
std::string resolve_device(const std::string& requested);

}  // namespace convkit
