// The files of a run directory, each named once.
#pragma once

#include <filesystem>
#include <vector>

#include "train/history.h"

namespace convkit::run {

struct RunDir {
  std::filesystem::path dir;

  std::filesystem::path model() const { return dir / "model.pt"; }  // best weights; model.json beside it
  std::filesystem::path resume() const { return dir / "resume.pt"; }
  std::filesystem::path history() const { return dir / "history.json"; }
  std::filesystem::path metrics() const { return dir / "metrics.json"; }
  std::filesystem::path settings() const { return dir / "run.json"; }

  // metrics.json is the run's last output, and a run that trains removes it first (see
  // forget_progress), so it exists exactly when the run finished.
  bool finished() const { return std::filesystem::exists(metrics()); }
};

// Removes what said how far the directory's run had got, before a run trains in it: for a fresh
// run, an older run's resume.pt, history.json, metrics.json and model.pt (the new model.json
// does not describe those weights); for a resumed one, its metrics.json (it is finished again
// only when it writes new ones). So neither --resume nor a restarted attempt ever continues a
// run that is not the one training there.
void forget_progress(const RunDir& run, bool resumed);

// The first `epochs` rows of history.json; an Error naming the file when it has fewer.
std::vector<train::EpochRecord> read_history(const RunDir& run, int64_t epochs);

void write_history(const RunDir& run, const std::vector<train::EpochRecord>& history);

}  // namespace convkit::run
