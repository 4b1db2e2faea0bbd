// libFuzzer target: sweep files as `convkit sweep FILE` reads them (grid or random trials over a
// base). Any input must end in a bounded list of valid trials or a convkit::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_input_file.h"
#include "run/sweep.h"
#include "util/error.h"
#include "util/files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz_input_file(data, size, ".json");
  try {
    if (convkit::run::sweep_trials(convkit::read_json_file(file), file.string()).empty()) __builtin_trap();
  } catch (const convkit::Error&) {
  }
  return 0;
}
