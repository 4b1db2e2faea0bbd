#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "run/sweep.h"

namespace convkit::cli {

void add_sweep_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<run::SweepOptions>();
  CLI::App* cmd = app.add_subcommand("sweep", "Grid or random search over training settings, with a leaderboard");
  cmd->add_option("file", o->file, "Sweep description (JSON): out, base, grid or random, jobs")->required();
  cmd->add_option("--out", o->out_dir, "Directory for the trials and the leaderboard (default: the file's \"out\")");
  cmd->add_option("--jobs", o->jobs, "Trials run side by side, sharing the threads")->check(CLI::Range(0, 256));
  cmd->add_option("--threads", o->threads, "Total compute threads (0: all cores)")->check(CLI::Range(0, 1024));
  cmd->callback([o, &exit_code] {
    exit_code = run::run_sweep(*o, std::filesystem::read_symlink("/proc/self/exe").string(), std::cout);
  });
}

}  // namespace convkit::cli
