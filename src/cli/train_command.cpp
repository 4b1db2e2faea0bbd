#include <signal.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <variant>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "dist/environment.h"
#include "dist/launcher.h"
#include "dist/process_group.h"
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

void add_run_flags(CLI::App& cmd, run::TrainRequest& request, const std::string& out_help) {
  for (const run::Setting& setting : run::settings())
    if (setting.flag) add_setting_flag(cmd, setting, request.flags);
  cmd.add_option("--out", request.out_dir, out_help);
  cmd.add_option("--preset", request.preset,
                 "A network with its training options: " + join(run::preset_names(), "|") + " (flags override it)");
  cmd.add_option("--config", request.config_file,
                 "JSON file of settings (the keys of run.json, e.g. {\"model\": \"lenet-bn\", \"lr\": 0.002}); "
                 "flags override it");
  cmd.add_flag("--quiet", request.flags.quiet, "No progress bars");
}

void record_given_flags(const CLI::App& cmd, run::TrainRequest& request) {
  for (const run::Setting& setting : run::settings())
    if (setting.flag && cmd.get_option(setting.flag)->count()) request.given.insert(setting.key);
}

void add_data_flags(CLI::App& cmd, run::TrainOptions& storage) {
  for (const run::Setting& setting : run::settings())
    for (const char* key : run::kDataSettings)
      if (std::string(key) == setting.key) add_setting_flag(cmd, setting, storage);
}

namespace {

// How a data-parallel run is started: not settings of the run, but of its processes.
struct Processes {
  int nproc = 1;
  double timeout_seconds = 60;
  dist::GradientWait gradient_wait = dist::GradientWait::automatic;
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  }
};

// The settings to train with. On --resume, a rank other than 0 takes rank 0's: the run
// directory may be on rank 0's machine only.
run::TrainOptions options_for_this_rank(const run::TrainRequest& request, const dist::ProcessGroup* group) {
  if (!group || request.resume_dir.empty()) return run::resolve_train_options(request);
  const run::TrainOptions resolved = group->is_main() ? run::resolve_train_options(request) : run::TrainOptions();
  const std::string settings =
      group->broadcast_bytes(group->is_main() ? run::settings_json(resolved, resolved.threads).dump() : "");
  if (group->is_main()) return resolved;
  run::TrainOptions o;
  run::apply_settings(o, nlohmann::json::parse(settings), "rank 0's settings");
  o.out_dir = request.resume_dir;
  o.resume = true;
  o.quiet = request.flags.quiet;
  return o;
}

// A restarted attempt of torchrun's (TORCHELASTIC_RESTART_COUNT > 0) continues the run the last
// attempt left, as torchrun expects of a training script, instead of training again from the
// start (with --resume, it resumes as told); nullopt when that run is finished. Rank 0, which
// owns the run directory, decides for every rank, on its own count (an agent that joined later
// counts from 0).
std::optional<run::TrainRequest> request_for_this_attempt(const run::TrainRequest& request,
                                                          const std::optional<dist::Environment>& env,
                                                          const dist::ProcessGroup* group, std::ostream& out) {
  const bool decides = !group || group->is_main();
  int restart = env ? env->restart_count : 0;
  run::EarlierAttempt earlier;
  if (decides && restart > 0) earlier = run::earlier_attempt(request);
  if (group) {
    const nlohmann::json decided = nlohmann::json::parse(group->broadcast_bytes(
        nlohmann::json{{"restart", restart}, {"dir", earlier.dir}, {"finished", earlier.finished}}.dump()));
    restart = decided.at("restart").get<int>();
    earlier = {decided.at("dir").get<std::string>(), decided.at("finished").get<bool>()};
  }
  if (earlier.dir.empty()) return request;
  const std::string restarted = "Restart " + std::to_string(restart) + " (TORCHELASTIC_RESTART_COUNT): ";
  if (earlier.finished) {
    if (decides) out << restarted << "the run in " << earlier.dir << " is finished; nothing is left to do\n";
    return std::nullopt;
  }
  if (!request.resume_dir.empty()) return request;  // resumes as told
  if (decides) out << restarted << "continuing the run in " << earlier.dir << "\n";
  return run::resuming(request, earlier.dir);
}

// This process as one rank of a distributed run when torchrun's variables (or --nproc's) say so.
std::unique_ptr<dist::ProcessGroup> join_group(const std::optional<dist::Environment>& env,
                                               const Processes& processes) {
  if (!env || env->world_size == 1) return nullptr;
  return std::make_unique<dist::ProcessGroup>(*env, processes.timeout(), processes.gradient_wait);
}

void train_on_this_process(const run::TrainRequest& request, const Processes& processes) {
  const std::optional<dist::Environment> env = dist::environment_from_variables();
  const std::unique_ptr<dist::ProcessGroup> group = join_group(env, processes);
  const std::string rank = group ? "rank " + std::to_string(group->rank()) + ": " : "";
  std::string dir = request.resume_dir.empty() ? request.out_dir : request.resume_dir;
  try {
    const std::optional<run::TrainRequest> attempt = request_for_this_attempt(request, env, group.get(), std::cout);
    if (!attempt) return;
    const run::TrainOptions options = options_for_this_rank(*attempt, group.get());
    dir = run::out_dir_for(options).string();
    run::run_training(options, std::cout, group.get());
  } catch (const Interrupted& e) {
    if (group) group->report_failure(e.what());
    throw Interrupted(e.signal(), rank + e.what() + "; every file in " + dir +
                                      " is whole: continue with `convkit train --resume " + dir + "`");
  } catch (const std::exception& e) {
    if (!group) throw;
    const std::string message = first_line(e.what());
    group->report_failure(message);
    throw Error(rank + message);
  }
}

void launch_workers(const run::TrainRequest& request, const Processes& processes,
                    const std::vector<std::string>& argv) {
  if (dist::environment_from_variables()) {
    throw Error(
        "--nproc: this process is already one of a distributed run's (RANK and WORLD_SIZE are set): "
        "leave --nproc out under torchrun");
  }
  const run::TrainOptions options = run::resolve_train_options(request);
  run::validate(options);  // one message for a bad flag, not one per worker
  const int code = dist::run_local_workers(dist::without_nproc_flag(argv), processes.nproc, processes.timeout());
  if (code == 0) return;
  const std::string dir = run::out_dir_for(options).string();
  if (code > 128 && (code - 128 == SIGINT || code - 128 == SIGTERM)) {
    throw Interrupted(code - 128, "interrupted by " + signal_name(code - 128) +
                                      ": the workers stopped; every file in " + dir +
                                      " is whole: continue with `convkit train --nproc " +
                                      std::to_string(processes.nproc) + " --resume " + dir + "`");
  }
  throw Error("--nproc " + std::to_string(processes.nproc) + ": the distributed run failed (exit status " +
              std::to_string(code) + "); " + dir + " keeps the last completed epoch (`--resume " + dir + "`)");
}

}  // namespace

void add_train_command(CLI::App& app, const std::vector<std::string>& argv) {
  auto request = std::make_shared<run::TrainRequest>();
  auto processes = std::make_shared<Processes>();
  CLI::App* cmd =
      app.add_subcommand("train", "Train a network the tutorial's way (on FashionMNIST unless --data says otherwise)");
  add_run_flags(*cmd, *request, "Run directory for outputs (default: runs/<model>)");
  cmd->add_option("--resume", request->resume_dir,
                  "Continue the run in this directory from its last completed epoch, with its settings");
  cmd->add_option("--nproc", processes->nproc,
                  "Data-parallel training on N processes of this machine (c10d, Gloo); --threads is split between "
                  "them and --batch-size stays the global batch. Under torchrun, leave it out: its RANK, WORLD_SIZE, "
                  "MASTER_ADDR and MASTER_PORT start the same")
      ->check(CLI::Range(1, 256));
  cmd->add_option("--dist-timeout", processes->timeout_seconds,
                  "Seconds a distributed run waits for a rank (rendezvous, every collective) before it stops with "
                  "an error naming the rank")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option_function<std::string>(
         "--dist-wait",
         [processes](const std::string& name) { processes->gradient_wait = dist::gradient_wait_named(name); },
         "How a rank waits for the others' gradients: poll (busy-wait, fastest, takes a core), sleep, or auto "
         "(poll only where every thread of this machine's ranks has a core of its own)")
      ->check(CLI::IsMember(dist::gradient_wait_names()))
      ->default_str(dist::gradient_wait_name(processes->gradient_wait));
  cmd->add_flag(
      "--no-report", [request](int64_t) { request->flags.report = false; }, "Skip figures/ and report.html");
  cmd->callback([cmd, request, processes, argv] {
    record_given_flags(*cmd, *request);
    if (processes->nproc > 1) {
      launch_workers(*request, *processes, argv);
    } else {
      train_on_this_process(*request, *processes);
    }
  });
}

}  // namespace convkit::cli
