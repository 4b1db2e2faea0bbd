#include "run/resolve.h"

#include <nlohmann/json.hpp>

#include "run/presets.h"
#include "run/settings.h"
#include "util/error.h"
#include "util/files.h"

namespace convkit::run {
namespace {

// The settings a resumed run may change: how long it trains and where it runs.
const std::set<std::string> kResumable = {"epochs", "threads", "device"};

TrainOptions from_preset_and_config(const TrainRequest& r) {
  TrainOptions options = r.preset.empty() ? TrainOptions{} : preset(r.preset);
  if (!r.config_file.empty()) {
    apply_settings(options, read_json_file(r.config_file), r.config_file);
    validate(options, r.config_file);
  }
  for (const Setting& s : settings())
    if (r.given.count(s.key)) copy_setting(s, r.flags, options);
  return options;
}

TrainOptions from_resumed_run(const TrainRequest& r) {
  for (const Setting& s : settings()) {
    if (r.given.count(s.key) && !kResumable.count(s.key)) {
      throw Error(s.name() + ": cannot be changed on --resume (the run's settings are kept)");
    }
  }
  if (!r.out_dir.empty()) throw Error("--out: cannot be changed on --resume (the run's directory is kept)");
  if (!r.preset.empty() || !r.config_file.empty()) {
    throw Error("--resume: takes the run's own settings; drop --preset/--config");
  }
  TrainOptions options = read_run_options(r.resume_dir);
  if (r.given.count("epochs")) options.epochs = r.flags.epochs;
  if (r.given.count("threads")) options.threads = r.flags.threads;
  options.device = r.flags.device;
  return options;
}

}  // namespace

TrainOptions resolve_train_options(const TrainRequest& r) {
  TrainOptions options = !r.resume_dir.empty()                         ? from_resumed_run(r)
                         : !r.preset.empty() || !r.config_file.empty() ? from_preset_and_config(r)
                                                                       : r.flags;
  if (r.resume_dir.empty()) options.out_dir = r.out_dir;
  options.quiet = r.flags.quiet;
  options.report = r.flags.report;
  return options;
}

}  // namespace convkit::run
