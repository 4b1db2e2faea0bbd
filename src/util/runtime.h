// Process-wide compute settings: one thread pool, and the device to run on.
#pragma once

#include <string>

namespace convkit {

// The threads `requested` means: itself when positive, else all cores (at least one).
int thread_budget(int requested);

// Sets LibTorch's intra-op threads to `requested` (<= 0: all cores) and pins OpenBLAS to one
// thread, so the two pools never oversubscribe the cores. Returns the thread count in use.
int configure_threads(int requested);

// OpenBLAS to one thread of its own. Required wherever several threads call BLAS at once (the
// batch shards): a threaded OpenBLAS entered concurrently from two threads gives wrong sums.
void pin_blas_to_one_thread();

// "auto" -> "cuda" when this LibTorch build and a GPU allow it, else "cpu"; "cuda" without a
// GPU is an Error naming --device.
std::string resolve_device(const std::string& requested);

}  // namespace convkit
