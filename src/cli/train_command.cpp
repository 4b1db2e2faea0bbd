#include <iostream>
#include <memory>
#include <variant>

#include "cli/commands.h"
#include "run/presets.h"
#include "run/resolve.h"
#include "run/settings.h"
#include "run/training.h"
#include "util/format.h"

namespace convkit::cli {
namespace {

// A flag for `setting`, storing into its field of `storage`.
CLI::Option* add_setting_flag(CLI::App& cmd, const run::Setting& setting, run::TrainOptions& storage) {
  return std::visit(
      [&](auto field) -> CLI::Option* {
        auto& target = field(storage);
        if constexpr (std::is_same_v<std::decay_t<decltype(target)>, bool>) {
          return cmd.add_flag(setting.flag, target, setting.help);
        } else {
          return cmd.add_option(setting.flag, target, setting.help)->capture_default_str();
        }
      },
      setting.field);
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto request = std::make_shared<run::TrainRequest>();
  CLI::App* cmd = app.add_subcommand("train", "Train a network on FashionMNIST the tutorial's way");
  for (const run::Setting& setting : run::settings())
    if (setting.flag) add_setting_flag(*cmd, setting, request->flags);
  cmd->add_option("--out", request->out_dir, "Run directory for outputs (default: runs/<model>)");
  cmd->add_option("--preset", request->preset,
                  "A network with its training options: " + join(run::preset_names(), "|") + " (flags override it)");
  cmd->add_option("--config", request->config_file,
                  "JSON file of settings (the keys of run.json, e.g. {\"model\": \"lenet-bn\", \"lr\": 0.002}); "
                  "flags override it");
  cmd->add_option("--resume", request->resume_dir,
                  "Continue the run in this directory from its last completed epoch, with its settings");
  cmd->add_flag("--quiet", request->flags.quiet, "No progress bars");
  cmd->add_flag(
      "--no-report", [request](int64_t) { request->flags.report = false; }, "Skip figures/ and report.html");
  cmd->callback([cmd, request] {
    for (const run::Setting& setting : run::settings())
      if (setting.flag && cmd->get_option(setting.flag)->count()) request->given.insert(setting.key);
    run::run_training(run::resolve_train_options(*request), std::cout);
  });
}

}  // namespace convkit::cli
