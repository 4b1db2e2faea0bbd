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
};

// The first `epochs` rows of history.json; an Error naming the file when it has fewer.
std::vector<train::EpochRecord> read_history(const RunDir& run, int64_t epochs);

void write_history(const RunDir& run, const std::vector<train::EpochRecord>& history);

}  // namespace convkit::run
