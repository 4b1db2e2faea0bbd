#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "report/compare.h"
#include "run/report_run.h"
#include "util/runtime.h"

namespace convkit::cli {

void add_report_command(CLI::App& app) {
  struct ReportOptions {
    std::string run_dir, device = "auto";
    int threads = 0;
  };
  auto o = std::make_shared<ReportOptions>();
  CLI::App* cmd = app.add_subcommand("report", "Regenerate a finished run's figures and report.html");
  cmd->add_option("run_dir", o->run_dir, "Run directory (as written by convkit train)")->required();
  cmd->add_option("--threads", o->threads, "Compute threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--device", o->device, "auto|cpu|cuda")->capture_default_str();
  cmd->callback([o] {
    configure_threads(o->threads);
    run::regenerate_report(o->run_dir, torch::Device(resolve_device(o->device)), std::cout);
  });
}

void add_compare_command(CLI::App& app) {
  struct CompareOptions {
    std::vector<std::string> runs;
    std::string out_dir = "runs/compare";
  };
  auto o = std::make_shared<CompareOptions>();
  CLI::App* cmd = app.add_subcommand("compare", "Overlay several runs' accuracy under rotation (PNG + HTML)");
  cmd->add_option("runs", o->runs, "Run directories")->required();
  cmd->add_option("--out", o->out_dir, "Directory for rotation.png and compare.html")->capture_default_str();
  cmd->callback([o] { report::compare_runs({o->runs.begin(), o->runs.end()}, o->out_dir, std::cout); });
}

}  // namespace convkit::cli
