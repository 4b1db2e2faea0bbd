#include "util/allocator.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

namespace convkit {

bool configure_allocator() {
  const char* choice = std::getenv("CONVKIT_MALLOC");
  if (choice && std::strcmp(choice, "default") == 0) return false;
  // mallopt returns 0 for a value glibc refuses; all three must hold for the policy to be in force.
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(kHeapBlockLimit)) == 1 &&
         mallopt(M_TRIM_THRESHOLD, static_cast<int>(kHeapTrimThreshold)) == 1 &&
         mallopt(M_TOP_PAD, static_cast<int>(kHeapTopPad)) == 1;
}

void restore_default_allocator() {
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  mallopt(M_TOP_PAD, 128 * 1024);
  malloc_trim(0);
}

}  // namespace convkit
