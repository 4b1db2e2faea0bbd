#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "run/lr_find.h"
#include "run/resolve.h"

namespace convkit::cli {

void add_lr_find_command(CLI::App& app) {
  auto request = std::make_shared<run::TrainRequest>();
  auto range = std::make_shared<run::LrFindSettings>();
  CLI::App* cmd = app.add_subcommand(
      "lr-find",
      "Learning-rate range test: train a fresh network at exponentially rising learning rates and suggest one");
  add_run_flags(*cmd, *request, "Directory for lr_find.json and lr_find.png (default: runs/lr-find-<model>)");
  cmd->add_option("--steps", range->steps, "Training steps (batches), each at a higher learning rate")
      ->capture_default_str();
  cmd->add_option("--start-lr", range->start_lr, "Learning rate of the first step")->capture_default_str();
  cmd->add_option("--end-lr", range->end_lr, "Learning rate of the last step")->capture_default_str();
  cmd->callback([cmd, request, range] {
    record_given_flags(*cmd, *request);
    run::find_learning_rate(run::resolve_train_options(*request), *range, std::cout);
  });
}

}  // namespace convkit::cli
