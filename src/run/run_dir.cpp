#include "run/run_dir.h"

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"

namespace convkit::run {

std::vector<train::EpochRecord> read_history(const RunDir& run, int64_t epochs) {
  const std::string source = run.history().string();
  std::vector<train::EpochRecord> history = train::history_from_json(read_json_file(run.history()), source);
  if (static_cast<int64_t>(history.size()) < epochs) {
    throw file_error(source,
                     "has " + std::to_string(history.size()) + " epochs, resume state has " + std::to_string(epochs));
  }
  history.resize(static_cast<size_t>(epochs));
  return history;
}

void forget_progress(const RunDir& run, bool resumed) {
  if (!resumed) {
    std::filesystem::remove(run.resume());
    std::filesystem::remove(run.history());
    std::filesystem::remove(run.model());  // an older run's weights, which model.json no longer describes
  }
  std::filesystem::remove(run.metrics());
}

void write_history(const RunDir& run, const std::vector<train::EpochRecord>& history) {
  write_file_atomically(run.history(), train::history_json(history).dump(2) + "\n");
}

}  // namespace convkit::run
