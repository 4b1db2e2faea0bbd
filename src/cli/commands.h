// The subcommands of `convkit`, each in a file of its own. Each registers its flags on `app`;
// its options live in an object its callback owns. Errors are left to main().
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "eval/load_model.h"
#include "run/resolve.h"
#include "run/settings.h"

namespace convkit::cli {

// A flag for `setting`, storing into its field of `storage`.
CLI::Option* add_setting_flag(CLI::App& cmd, const run::Setting& setting, run::TrainOptions& storage);

// The flags that say how a dataset is read (run::kDataSettings), as `train` has them.
void add_data_flags(CLI::App& cmd, run::TrainOptions& storage);

// The flags of a run's settings as `train` has them: every setting's, --out (described by
// `out_help`), --preset, --config and --quiet.
void add_run_flags(CLI::App& cmd, run::TrainRequest& request, const std::string& out_help);

// After parsing: the settings whose flag was given, which override --preset and --config.
void record_given_flags(const CLI::App& cmd, run::TrainRequest& request);

// --tta on eval and predict: the views asked for; when none were asked for, the run's (its
// run.json beside the checkpoint), so that eval reproduces the run's test numbers. Wraps
// `loaded`'s network in them and returns their name.
CLI::Option* add_tta_flag(CLI::App& cmd, std::string& storage);
std::string use_tta(eval::LoadedModel& loaded, const std::string& requested, const std::string& checkpoint);

// `argv`: the whole command line, which `--nproc` runs again in each worker.
void add_train_command(CLI::App& app, const std::vector<std::string>& argv);
void add_eval_command(CLI::App& app);
void add_export_command(CLI::App& app);
// predict and sweep report failures of single images or trials through `exit_code`.
void add_predict_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_sweep_command(CLI::App& app, int& exit_code);
void add_lr_find_command(CLI::App& app);

}  // namespace convkit::cli
