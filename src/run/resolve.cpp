#include "run/resolve.h"

#include <nlohmann/json.hpp>

#include "run/presets.h"
#include "run/run_dir.h"
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

// Whether `earlier`'s run is the one `fresh` starts with the same command line: every setting
// equal but where it runs (threads, device) and the world size (a restarted group may differ in
// size; the global batch keeps the arithmetic).
bool same_run(const TrainOptions& earlier, const TrainOptions& fresh) {
  static const std::set<std::string> kWhereItRuns = {"threads", "device", "world_size"};
  for (const Setting& s : settings()) {
    if (kWhereItRuns.count(s.key)) continue;
    if (text_of(s, earlier) != text_of(s, fresh)) return false;
  }
  return true;
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

EarlierAttempt earlier_attempt(const TrainRequest& request) {
  if (!request.resume_dir.empty()) return {request.resume_dir, RunDir{request.resume_dir}.finished()};
  const TrainOptions fresh = resolve_train_options(request);
  const RunDir run{out_dir_for(fresh)};
  if (!std::filesystem::exists(run.resume()) || !std::filesystem::exists(run.settings())) return {};
  if (!same_run(read_run_options(run.dir), fresh)) return {};
  return {run.dir.string(), run.finished()};
}

TrainRequest resuming(const TrainRequest& request, const std::string& dir) {
  TrainRequest r;
  r.flags = request.flags;
  for (const std::string& key : kResumable)
    if (request.given.count(key)) r.given.insert(key);
  r.resume_dir = dir;
  return r;
}

}  // namespace convkit::run
