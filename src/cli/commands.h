// The subcommands of `convkit`, each in a file of its own. Each registers its flags on `app`;
// its options live in an object its callback owns. Errors are left to main().
#pragma once

#include <CLI/CLI.hpp>

namespace convkit::cli {

void add_train_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_export_command(CLI::App& app);
// predict and sweep report failures of single images or trials through `exit_code`.
void add_predict_command(CLI::App& app, int& exit_code);
void add_report_command(CLI::App& app);
void add_compare_command(CLI::App& app);
void add_sweep_command(CLI::App& app, int& exit_code);

}  // namespace convkit::cli
