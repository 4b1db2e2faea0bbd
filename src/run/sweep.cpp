#include "run/sweep.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <fstream>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>

#include "eval/load_model.h"
#include "eval/test_sets.h"
#include "run/leaderboard.h"
#include "run/run_dir.h"
#include "run/settings.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/interrupt.h"
#include "util/runtime.h"

extern char** environ;

namespace convkit::run {
namespace {

using json = nlohmann::json;

// Bounds that turn a typo in a sweep file into an error instead of days of training.
constexpr size_t kMaxTrials = 10000;
constexpr uint64_t kMaxJobs = 256;

json draw(const json& space, const std::string& key, std::mt19937_64& rng, const std::string& source) {
  if (space.is_array() && !space.empty()) {
    return space[std::uniform_int_distribution<size_t>(0, space.size() - 1)(rng)];
  }
  if (space.is_object() && space.size() == 1) {
    const auto item = space.items().begin();
    const std::string kind = item.key();
    const json& range = item.value();
    if (range.is_array() && range.size() == 2 && range[0].is_number() && range[1].is_number()) {
      const double lo = range[0].get<double>(), hi = range[1].get<double>();
      if (kind == "uniform" && lo <= hi) return std::uniform_real_distribution<double>(lo, hi)(rng);
      if (kind == "log_uniform" && lo > 0 && lo <= hi) {
        return std::exp(std::uniform_real_distribution<double>(std::log(lo), std::log(hi))(rng));
      }
      if (kind == "int_uniform" && lo <= hi) {
        return std::uniform_int_distribution<int64_t>(static_cast<int64_t>(lo), static_cast<int64_t>(hi))(rng);
      }
    }
  }
  throw file_error(source, "random space for '" + key +
                               "' must be a non-empty list or {\"uniform\"|\"log_uniform\"|\"int_uniform\": [lo, hi]}");
}

struct Child {
  pid_t pid;
  size_t trial;
};

pid_t spawn(const std::string& binary, const std::vector<std::string>& args, const std::filesystem::path& log) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(binary.c_str()));
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw Error("sweep: cannot start " + binary + ": " + std::strerror(rc));
  return pid;
}

bool finished(const std::filesystem::path& dir) {
  const RunDir run{dir};
  if (!run.finished()) return false;
  try {
    return read_json_file(run.metrics()).contains("best_valid_acc");
  } catch (const Error&) {
    return false;
  }
}

// `v` when it is an integer >= 0 (JSON keeps small ones as signed numbers).
std::optional<uint64_t> count_in(const json& v) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  return std::nullopt;
}

// Every combination of the grid's values.
std::vector<json> grid_trials(const json& grid, const std::string& source) {
  if (!grid.is_object() || grid.empty()) throw file_error(source, "\"grid\" must map settings to lists of values");
  std::vector<json> trials = {json::object()};
  for (const auto& [key, values] : grid.items()) {
    if (!values.is_array() || values.empty()) {
      throw file_error(source, "grid values for '" + key + "' must be a non-empty list");
    }
    if (trials.size() * values.size() > kMaxTrials) {
      throw file_error(source, "the grid has more than " + std::to_string(kMaxTrials) + " combinations");
    }
    std::vector<json> next;
    for (const auto& t : trials)
      for (const auto& v : values) {
        json n = t;
        n[key] = v;
        next.push_back(n);
      }
    trials = std::move(next);
  }
  return trials;
}

std::vector<json> random_trials(const json& random, const std::string& source) {
  if (!random.is_object()) throw file_error(source, "\"random\" must be an object");
  const uint64_t n = count_in(random.value("trials", json(0))).value_or(0);
  if (n == 0 || n > kMaxTrials) {
    throw file_error(source, "\"random.trials\" must be an integer between 1 and " + std::to_string(kMaxTrials));
  }
  if (!random.contains("space") || !random["space"].is_object()) {
    throw file_error(source, "\"random.space\" must be an object");
  }
  const std::optional<uint64_t> seed = count_in(random.value("seed", json(1)));
  if (!seed) throw file_error(source, "\"random.seed\" must be a non-negative integer");
  std::mt19937_64 rng(*seed);
  std::vector<json> trials;
  for (uint64_t i = 0; i < n; ++i) {
    json t = json::object();
    for (const auto& [key, space] : random["space"].items()) t[key] = draw(space, key, rng, source);
    trials.push_back(t);
  }
  return trials;
}

// The settings that differ between trials: what names a trial in the leaderboard.
std::set<std::string> varying_keys(const std::vector<json>& trials) {
  std::set<std::string> varying;
  for (const auto& t : trials)
    for (const auto& [k, v] : t.items())
      if (t != trials.front() && (!trials.front().contains(k) || trials.front()[k] != v)) varying.insert(k);
  return varying;
}

json only(const json& settings, const std::set<std::string>& keys) {
  json v = json::object();
  for (const auto& k : keys)
    if (settings.contains(k)) v[k] = settings[k];
  return v;
}

// Everything a running sweep needs to know.
struct SweepPlan {
  std::vector<json> trials;
  std::vector<std::filesystem::path> dirs;
  std::set<std::string> varying;
  int jobs = 1, threads_per_job = 1;
};

// Passes the signal on to the running trials, waits for them (each leaves its files whole), and
// stops the sweep; a rerun continues it.
[[noreturn]] void stop_trials(const std::vector<Child>& running, int signal) {
  for (const Child& c : running) kill(c.pid, signal);
  for (const Child& c : running) waitpid(c.pid, nullptr, 0);
  throw Interrupted(signal, "sweep interrupted by " + signal_name(signal) +
                                "; finished trials are kept: run the sweep again to continue it");
}

pid_t start_trial(const SweepPlan& plan, size_t i, const std::string& convkit_binary) {
  const std::filesystem::path& dir = plan.dirs[i];
  ensure_writable_dir(dir);
  json config = plan.trials[i];
  config["threads"] = plan.threads_per_job;
  config["test"] = false;  // selection on validation only
  write_file_atomically(dir / "config.json", config.dump(2) + "\n");
  return spawn(convkit_binary,
               {"train", "--config", (dir / "config.json").string(), "--out", dir.string(), "--quiet", "--no-report"},
               dir / "train.log");
}

// Runs the unfinished trials, `plan.jobs` at a time; returns how many failed.
int run_trials(const SweepPlan& plan, const std::vector<size_t>& pending, const std::string& convkit_binary,
               std::ostream& out) {
  const size_t total = plan.trials.size();
  int failures = 0;
  std::vector<Child> running;
  size_t next = 0;
  while (next < pending.size() || !running.empty()) {
    while (next < pending.size() && static_cast<int>(running.size()) < plan.jobs) {
      const size_t i = pending[next++];
      running.push_back({start_trial(plan, i, convkit_binary), i});
    }
    int status = 0;
    const pid_t done = waitpid(-1, &status, 0);
    if (const int signal = interrupt_requested()) stop_trials(running, signal);
    if (done < 0 && errno == EINTR) continue;
    if (done < 0) break;
    auto it = std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == done; });
    if (it == running.end()) continue;
    const size_t i = it->trial;
    running.erase(it);
    const std::filesystem::path& dir = plan.dirs[i];
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && finished(dir)) {
      const json m = read_json_file(RunDir{dir}.metrics());
      out << strprintf("[%zu/%zu] %s: valid acc %.2f%% (%s)\n", i + 1, total, dir.filename().c_str(),
                       100 * m.value("best_valid_acc", 0.0),
                       settings_summary(only(plan.trials[i], plan.varying)).c_str());
    } else {
      ++failures;
      out << strprintf("[%zu/%zu] %s: FAILED (see %s)\n", i + 1, total, dir.filename().c_str(),
                       (dir / "train.log").c_str());
    }
    out << std::flush;
  }
  return failures;
}

std::vector<LeaderboardRow> leaderboard_rows(const SweepPlan& plan) {
  std::vector<LeaderboardRow> rows;
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    if (!finished(plan.dirs[i])) continue;
    const json m = read_json_file(RunDir{plan.dirs[i]}.metrics());
    rows.push_back({plan.dirs[i].filename().string(), only(plan.trials[i], plan.varying),
                    m.value("best_valid_acc", 0.0), m.value("best_valid_loss", 0.0), m.value("total_seconds", 0.0),
                    m.value("epochs_run", int64_t{0})});
  }
  return rows;
}

// The test and rotated-test results of the trial with the best validation accuracy.
json test_chosen_trial(const std::filesystem::path& out_dir, const std::vector<LeaderboardRow>& rows) {
  const auto best = std::max_element(rows.begin(), rows.end(),
                                     [](const auto& a, const auto& b) { return a.valid_acc < b.valid_acc; });
  const std::filesystem::path dir = out_dir / best->trial;
  const TrainOptions settings = read_run_options(dir);
  const eval::LoadedModel loaded = eval::load_model(RunDir{dir}.model(), "", settings.data_dir);
  const data::Split test =
      eval::load_test_images_for(loaded, settings.data_dir, settings.limit, data_options(settings));
  torch::manual_seed(settings.seed);
  const auto r = eval::evaluate_test_sets(*loaded.model, test, loaded.normalization(), settings.rotation,
                                          settings.batch_size, torch::kCPU, false);
  return {{"trial", best->trial},
          {"settings", best->settings},
          {"valid_acc", best->valid_acc},
          {"test_loss", r.test.loss},
          {"test_acc", r.test.acc},
          {"rotated_test_loss", r.rotated_test.loss},
          {"rotated_test_acc", r.rotated_test.acc}};
}

}  // namespace

std::vector<json> sweep_trials(const json& sweep, const std::string& source) {
  if (!sweep.is_object()) throw file_error(source, "a sweep must be a JSON object");
  for (const auto& [key, _] : sweep.items()) {
    static const std::set<std::string> known = {"out", "base", "grid", "random", "jobs"};
    if (!known.count(key)) throw file_error(source, "unknown key '" + key + "' (use out, base, grid, random, jobs)");
  }
  if (sweep.contains("grid") == sweep.contains("random")) {
    throw file_error(source, "needs exactly one of \"grid\" and \"random\"");
  }
  const json base = sweep.value("base", json::object());
  if (!base.is_object()) throw file_error(source, "\"base\" must be an object of settings");
  std::vector<json> trials =
      sweep.contains("grid") ? grid_trials(sweep["grid"], source) : random_trials(sweep["random"], source);
  for (auto& t : trials) {
    json merged = base;
    merged.update(t);
    TrainOptions check;
    apply_settings(check, merged, source);
    validate(check, source);
    t = merged;
  }
  return trials;
}

int run_sweep(const SweepOptions& options, const std::string& convkit_binary, std::ostream& out) {
  const std::string source = options.file.string();
  const json sweep = read_json_file(options.file);
  SweepPlan plan;
  plan.trials = sweep_trials(sweep, source);
  plan.varying = varying_keys(plan.trials);
  const json out_value = sweep.value("out", json("runs/sweep"));
  const std::optional<uint64_t> jobs = count_in(sweep.value("jobs", json(1)));
  if (!out_value.is_string()) throw file_error(source, "\"out\" must be a directory name");
  if (!jobs || *jobs > kMaxJobs) {
    throw file_error(source, "\"jobs\" must be an integer between 0 and " + std::to_string(kMaxJobs));
  }
  const std::filesystem::path out_dir = options.out_dir.empty() ? out_value.get<std::string>() : options.out_dir;
  plan.jobs = std::max(1, options.jobs > 0 ? options.jobs : static_cast<int>(*jobs));
  plan.threads_per_job = std::max(1, configure_threads(options.threads) / plan.jobs);
  ensure_writable_dir(out_dir);
  write_file_atomically(out_dir / "sweep.json", sweep.dump(2) + "\n");

  out << "Sweep: " << plan.trials.size() << " trials in " << out_dir.string() << "/, " << plan.jobs << " at a time, "
      << plan.threads_per_job << " thread(s) each\n";
  std::vector<size_t> pending;
  for (size_t i = 0; i < plan.trials.size(); ++i) {
    plan.dirs.push_back(out_dir / strprintf("trial-%03zu", i + 1));
    if (!finished(plan.dirs.back())) {
      pending.push_back(i);
    } else {
      out << strprintf("[%zu/%zu] %s: finished earlier, skipped\n", i + 1, plan.trials.size(),
                       plan.dirs.back().filename().c_str());
    }
  }
  const int failures = run_trials(plan, pending, convkit_binary, out);
  const std::vector<LeaderboardRow> rows = leaderboard_rows(plan);
  const json chosen = rows.empty() ? json(nullptr) : test_chosen_trial(out_dir, rows);
  if (!rows.empty()) write_file_atomically(out_dir / "chosen.json", chosen.dump(2) + "\n");
  write_leaderboard(out_dir, rows, chosen);
  if (!chosen.is_null()) {
    out << strprintf("Chosen by validation: %s (valid acc %.2f%%): Test Acc %.2f%% | Rotated Test Acc %.2f%%\n",
                     chosen["trial"].get<std::string>().c_str(), 100 * chosen["valid_acc"].get<double>(),
                     100 * chosen["test_acc"].get<double>(), 100 * chosen["rotated_test_acc"].get<double>());
  }
  out << "Leaderboard: " << (out_dir / "leaderboard.md").string() << " (.csv, .html)\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace convkit::run
