#include <iostream>
#include <memory>
#include <variant>

#include "cli/commands.h"
#include "run/presets.h"
#include "run/resolve.h"
#include "run/settings.h"
#include "run/training.h"
#include "util/format.h"
#include "util/interrupt.h"

namespace convkit::cli {

// Values are parsed by the settings table (exact types and ranges), not by CLI11, which would
// wrap "-1" into an unsigned seed.
CLI::Option* add_setting_flag(CLI::App& cmd, const run::Setting& setting, run::TrainOptions& storage) {
  if (std::holds_alternative<run::FieldOf<bool>>(setting.field)) {
    return cmd.add_flag(setting.flag, std::get<run::FieldOf<bool>>(setting.field)(storage), setting.help);
  }
  return cmd
      .add_option_function<std::string>(
          setting.flag, [&setting, &storage](const std::string& text) { run::set_from_text(setting, storage, text); },
          setting.help)
      ->default_str(run::text_of(setting, storage));
}

void add_data_flags(CLI::App& cmd, run::TrainOptions& storage) {
  for (const run::Setting& setting : run::settings())
    for (const char* key : run::kDataSettings)
      if (std::string(key) == setting.key) add_setting_flag(cmd, setting, storage);
}

void add_train_command(CLI::App& app) {
  auto request = std::make_shared<run::TrainRequest>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a network the tutorial's way (on FashionMNIST unless --data says otherwise)");
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
    const run::TrainOptions options = run::resolve_train_options(*request);
    try {
      run::run_training(options, std::cout);
    } catch (const Interrupted& e) {
      const std::string dir = run::out_dir_for(options).string();
      throw Interrupted(e.signal(), std::string(e.what()) + "; every file in " + dir +
                                        " is whole: continue with `convkit train --resume " + dir + "`");
    }
  });
}

}  // namespace convkit::cli
