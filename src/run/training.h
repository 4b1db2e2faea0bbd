// `convkit train`: the whole tutorial, from the IDX files to the run directory.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <vector>

#include "run/options.h"
#include "train/history.h"
#include "train/loop.h"

namespace convkit::dist {
class ProcessGroup;
}

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
//
// With a `group`, this process is one rank of a data-parallel run (docs/design.md): every rank
// takes its slice of each batch of the same order, the gradients are summed over the ranks
// before each step, validation and test batches are shared out; the ranks first check that
// their settings and data agree. Only rank 0 prints and writes files; the others read nothing
// of the run directory either (a resumed run's state comes from rank 0).
RunResult run_training(const TrainOptions& options, std::ostream& out, const dist::ProcessGroup* group = nullptr);

}  // namespace convkit::run
