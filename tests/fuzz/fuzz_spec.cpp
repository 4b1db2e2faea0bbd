// libFuzzer target: network specs as `--model` takes them (c6k5-mp2-...). Any input must end in a
// network built within the spec's stated bounds or in a convkit::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "models/spec_net.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string spec(reinterpret_cast<const char*>(data), size);
  try {
    convkit::models::SpecNet net(spec, 10);  // parses the spec, then builds every layer
  } catch (const convkit::Error&) {
  }
  return 0;
}
