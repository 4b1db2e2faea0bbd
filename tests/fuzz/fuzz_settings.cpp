// libFuzzer target: run settings as `--config` and a run's run.json hold them. Any input must end
// in valid settings or a convkit::Error naming the file.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "fuzz_input_file.h"
#include "run/settings.h"
#include "util/error.h"
#include "util/files.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto file = fuzz_input_file(data, size, ".json");
  try {
    convkit::run::TrainOptions options;
    convkit::run::apply_settings(options, convkit::read_json_file(file), file.string());
    convkit::run::validate(options, file.string());
  } catch (const convkit::Error&) {
  }
  return 0;
}
