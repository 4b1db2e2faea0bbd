// Which settings a `convkit train` runs with: its flags over a --config file over a --preset
// over the defaults, or a run's own settings on --resume.
#pragma once

#include <set>
#include <string>

#include "run/options.h"

namespace convkit::run {

// What the command line asked for.
struct TrainRequest {
  TrainOptions flags;           // the defaults, overwritten by each flag given
  std::set<std::string> given;  // keys (settings.h) of the settings whose flag was given
  std::string out_dir;          // --out (not a setting: a run directory is where run.json lives)
  std::string preset, config_file, resume_dir;
};

// The options to train with; an Error naming the flag or file when they contradict each other
// (on --resume only --epochs, --threads and --device may be given) or a --config file holds
// an invalid value. run_training validates the result.
TrainOptions resolve_train_options(const TrainRequest& request);

// What an earlier attempt left in the run directory `request` names, for a worker restarted with
// its unchanged command line (torchrun's --max_restarts): with --resume, that directory.
struct EarlierAttempt {
  std::string dir;        // a resumable run of the same settings (but where it runs); empty: none
  bool finished = false;  // that run wrote its metrics.json: nothing is left to do
};
EarlierAttempt earlier_attempt(const TrainRequest& request);

// `request` as the --resume of `dir`, with only the flags a resume may change.
TrainRequest resuming(const TrainRequest& request, const std::string& dir);

}  // namespace convkit::run
