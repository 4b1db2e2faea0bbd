// libFuzzer target: checkpoints as torch.save writes them (zip and legacy formats, the pickle
// inside). Any input must end in a state_dict or a convkit::Error; a crash, a sanitizer report,
// another exception or a memory blow-up is a bug.
#include <cstddef>
#include <cstdint>

#include "checkpoint/torch_pickle.h"
#include "fuzz_input_file.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    for (const auto& [name, tensor] : convkit::checkpoint::read_torch_state_dict(fuzz_input_file(data, size, ".pt"))) {
      if (!tensor.defined() || !tensor.is_contiguous()) __builtin_trap();  // loaded tensors own compact memory
    }
  } catch (const convkit::Error&) {
  }
  return 0;
}
