// The process's heap policy for tensors. A CNN's activations (a batch of 128 images x 32
// channels x 28x28 floats is 12.8 MB) are above glibc's default mmap threshold: each step would
// map fresh pages, fault and zero them, and unmap them again, and the kernel's share of the
// CPU time grows to a third. Keeping such blocks in the heap makes a step reuse its memory.
#pragma once

#include <cstddef>

namespace convkit {

// Blocks up to this size come from the heap (glibc's largest allowed mmap threshold on 64-bit).
inline constexpr size_t kHeapBlockLimit = size_t{32} << 20;
// Freed memory beyond this much at the top of the heap is returned to the system, so what the
// heap keeps is bounded by the largest working set plus this.
inline constexpr size_t kHeapTrimThreshold = size_t{256} << 20;
// Extra room asked for each time the heap grows, so a growing working set grows it rarely.
inline constexpr size_t kHeapTopPad = size_t{64} << 20;

// Applies the policy above (mallopt) unless CONVKIT_MALLOC=default is set. Returns true when
// the policy is in force. Call it first thing in main, before large allocations.
bool configure_allocator();

// glibc's own defaults again (a 128 KiB mmap threshold): what the tests compare against.
void restore_default_allocator();

}  // namespace convkit
