// `convkit sweep FILE`: grid or random search over training settings. Each trial is a full
// run directory trained by a child `convkit train --config`; finished trials are skipped on a
// rerun; the leaderboard ranks trials by validation accuracy, and only the chosen trial is
// evaluated on the test set.
//
// FILE (JSON):
//   {"out": "runs/sweep",                       // where trial-NNN/ and the leaderboard go
//    "base": {"epochs": 3, "limit": 10000},     // settings shared by every trial (run.json keys)
//    "grid": {"lr": [1e-3, 3e-3], "model": ["lenet", "lenet-bn"]},       // every combination, or
//    "random": {"trials": 8, "seed": 1,
//               "space": {"lr": {"log_uniform": [1e-4, 1e-2]}, "batch_size": [32, 64, 128],
//                         "label_smoothing": {"uniform": [0, 0.2]}}},
//    "jobs": 1}                                 // trials side by side (threads shared out)
#pragma once

#include <filesystem>
#include <iosfwd>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace convkit::run {

struct SweepOptions {
  std::filesystem::path file;
  std::string out_dir;  // overrides the file's "out"
  int jobs = 0;         // overrides the file's "jobs" (0: keep)
  int threads = 0;      // total thread budget (0: all cores)
};

// The trials a sweep file describes: each a JSON object of settings (base merged in).
std::vector<nlohmann::json> sweep_trials(const nlohmann::json& sweep, const std::string& source);

// Runs the sweep; returns the process exit code (non-zero when a trial failed).
int run_sweep(const SweepOptions& options, const std::string& convkit_binary, std::ostream& out);

}  // namespace convkit::run
