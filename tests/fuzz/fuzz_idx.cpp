// libFuzzer target: IDX files, raw and gzip. Any input must end in a value or a convkit::Error;
// a crash, a sanitizer report, another exception or a memory blow-up is a bug.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "data/idx.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  for (uint32_t magic : {convkit::data::kIdxImagesMagic, convkit::data::kIdxLabelsMagic}) {
    try {
      const convkit::data::IdxArray a = convkit::data::parse_idx({data, data + size}, "fuzz", magic);
      uint64_t n = 1;
      for (int64_t d : a.dims) n *= static_cast<uint64_t>(d);
      if (n != a.bytes.size()) __builtin_trap();  // a parsed array holds exactly what its header says
    } catch (const convkit::Error&) {
    }
  }
  return 0;
}
