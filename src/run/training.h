// `convkit train`: the whole tutorial, from the IDX files to the run directory.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <vector>

#include "run/options.h"
#include "train/history.h"
#include "train/loop.h"

namespace convkit::run {

struct RunResult {
  std::vector<train::EpochRecord> history;
  int64_t best_epoch = 0;
  train::EpochStats test, rotated_test;
  std::filesystem::path out_dir;
};

// Seed, data, normalisation, split, model, optimiser, epochs with the best checkpoint, test
// and rotated test, then model.pt, history.json, metrics.json and the report. Prints the
// tutorial's lines to `out`.
RunResult run_training(const TrainOptions& options, std::ostream& out);

}  // namespace convkit::run
