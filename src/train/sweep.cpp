#include "train/sweep.h"

#include <spawn.h>
#include <sys/wait.h>
#include <fcntl.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>

#include "train/inference.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/runtime.h"

extern char** environ;

namespace convkit::train {
namespace {

using json = nlohmann::json;

json read_json(const std::filesystem::path& file) {
  const auto raw = read_file_bytes(file);
  try {
    return json::parse(raw.begin(), raw.end());
  } catch (const json::parse_error& e) {
    throw file_error(file.string(), std::string("invalid JSON: ") + e.what());
  }
}

json draw(const json& space, const std::string& key, std::mt19937_64& rng, const std::string& source) {
  if (space.is_array() && !space.empty()) {
    return space[std::uniform_int_distribution<size_t>(0, space.size() - 1)(rng)];
  }
  if (space.is_object() && space.size() == 1) {
    const auto& [kind, range] = *space.items().begin();
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

std::string settings_summary(const json& settings) {
  std::string s;
  for (const auto& [k, v] : settings.items()) s += (s.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

bool finished(const std::filesystem::path& dir) {
  const auto file = dir / "metrics.json";
  if (!std::filesystem::exists(file)) return false;
  try {
    return read_json(file).contains("best_valid_acc");
  } catch (const Error&) {
    return false;
  }
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::vector<json> sweep_trials(const json& sweep, const std::string& source) {
  if (!sweep.is_object()) throw file_error(source, "a sweep must be a JSON object");
  for (const auto& [key, _] : sweep.items()) {
    static const std::set<std::string> known = {"out", "base", "grid", "random", "jobs"};
    if (!known.count(key)) throw file_error(source, "unknown key '" + key + "' (use out, base, grid, random, jobs)");
  }
  const json base = sweep.value("base", json::object());
  std::vector<json> trials;
  if (sweep.contains("grid") == sweep.contains("random")) throw file_error(source, "needs exactly one of \"grid\" and \"random\"");
  if (sweep.contains("grid")) {
    const json& grid = sweep["grid"];
    if (!grid.is_object() || grid.empty()) throw file_error(source, "\"grid\" must map settings to lists of values");
    trials.push_back(json::object());
    for (const auto& [key, values] : grid.items()) {
      if (!values.is_array() || values.empty()) throw file_error(source, "grid values for '" + key + "' must be a non-empty list");
      std::vector<json> next;
      for (const auto& t : trials)
        for (const auto& v : values) {
          json n = t;
          n[key] = v;
          next.push_back(n);
        }
      trials = std::move(next);
    }
  } else {
    const json& random = sweep["random"];
    const int64_t n = random.value("trials", int64_t{0});
    if (n <= 0 || n > 10000) throw file_error(source, "\"random.trials\" must be between 1 and 10000");
    if (!random.contains("space") || !random["space"].is_object()) throw file_error(source, "\"random.space\" must be an object");
    std::mt19937_64 rng(random.value("seed", uint64_t{1}));
    for (int64_t i = 0; i < n; ++i) {
      json t = json::object();
      for (const auto& [key, space] : random["space"].items()) t[key] = draw(space, key, rng, source);
      trials.push_back(t);
    }
  }
  for (auto& t : trials) {
    json merged = base;
    merged.update(t);
    TrainOptions check;
    apply_settings(check, merged, source);
    validate(check);
    t = merged;
  }
  return trials;
}

void write_leaderboard(const std::filesystem::path& dir, std::vector<LeaderboardRow> rows, const json& chosen_test) {
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.valid_acc > b.valid_acc; });
  std::ostringstream csv, md, html;
  csv << "rank,trial,valid_acc,valid_loss,epochs_run,seconds,settings\n";
  md << "| rank | trial | valid acc | valid loss | epochs | seconds | settings |\n|---|---|---|---|---|---|---|\n";
  html << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>convkit sweep leaderboard</title>"
       << "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
       << "td,th{border:1px solid #ddd;padding:.25em .6em}th{background:#f4f6f8}</style></head><body>"
       << "<h1>Sweep leaderboard</h1><p>Ranked by validation accuracy; the test set is used for the chosen trial only.</p>"
       << "<table><tr><th>rank</th><th>trial</th><th>valid acc</th><th>valid loss</th><th>epochs</th><th>seconds</th><th>settings</th></tr>";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const std::string settings = settings_summary(r.settings);
    csv << i + 1 << "," << r.trial << "," << strprintf("%.6f,%.6f,", r.valid_acc, r.valid_loss) << r.epochs_run << ","
        << strprintf("%.1f", r.seconds) << "," << csv_field(settings) << "\n";
    md << "| " << i + 1 << " | " << r.trial << " | " << strprintf("%.2f%% | %.4f | ", 100 * r.valid_acc, r.valid_loss)
       << r.epochs_run << " | " << strprintf("%.1f", r.seconds) << " | " << settings << " |\n";
    html << "<tr><td>" << i + 1 << "</td><td>" << r.trial << "</td>" << strprintf("<td>%.2f%%</td><td>%.4f</td>", 100 * r.valid_acc, r.valid_loss)
         << "<td>" << r.epochs_run << "</td>" << strprintf("<td>%.1f</td>", r.seconds) << "<td>" << settings << "</td></tr>";
  }
  if (!chosen_test.is_null()) {
    const std::string line = strprintf("Chosen: %s, test accuracy %.2f%%, rotated test accuracy %.2f%%",
                                       chosen_test.value("trial", std::string()).c_str(), 100 * chosen_test.value("test_acc", 0.0),
                                       100 * chosen_test.value("rotated_test_acc", 0.0));
    md << "\n" << line << "\n";
    html << "</table><p><b>" << line << "</b></p>";
  } else {
    html << "</table>";
  }
  html << "</body></html>\n";
  write_file_atomically(dir / "leaderboard.csv", csv.str());
  write_file_atomically(dir / "leaderboard.md", md.str());
  write_file_atomically(dir / "leaderboard.html", html.str());
}

int run_sweep(const SweepOptions& options, const std::string& convkit_binary, std::ostream& out) {
  const std::string source = options.file.string();
  const json sweep = read_json(options.file);
  const std::vector<json> trials = sweep_trials(sweep, source);
  const std::filesystem::path out_dir = options.out_dir.empty() ? sweep.value("out", std::string("runs/sweep")) : options.out_dir;
  const int jobs = std::max(1, options.jobs > 0 ? options.jobs : sweep.value("jobs", 1));
  const int total_threads = configure_threads(options.threads);
  const int threads_per_job = std::max(1, total_threads / jobs);
  ensure_writable_dir(out_dir);
  write_file_atomically(out_dir / "sweep.json", sweep.dump(2) + "\n");

  // The settings that differ between trials name them in the leaderboard.
  std::set<std::string> varying;
  for (const auto& t : trials)
    for (const auto& [k, v] : t.items())
      if (t != trials.front() && (!trials.front().contains(k) || trials.front()[k] != v)) varying.insert(k);
  auto varying_of = [&](const json& t) {
    json v = json::object();
    for (const auto& k : varying)
      if (t.contains(k)) v[k] = t[k];
    return v;
  };

  out << "Sweep: " << trials.size() << " trials in " << out_dir.string() << "/, " << jobs << " at a time, "
      << threads_per_job << " thread(s) each\n";
  std::vector<std::filesystem::path> dirs;
  std::vector<size_t> pending;
  for (size_t i = 0; i < trials.size(); ++i) {
    dirs.push_back(out_dir / strprintf("trial-%03zu", i + 1));
    if (finished(dirs.back())) {
      out << strprintf("[%zu/%zu] %s: finished earlier, skipped\n", i + 1, trials.size(), dirs.back().filename().c_str());
    } else {
      pending.push_back(i);
    }
  }
  int failures = 0;
  std::vector<Child> running;
  size_t next = 0;
  while (next < pending.size() || !running.empty()) {
    while (next < pending.size() && static_cast<int>(running.size()) < jobs) {
      const size_t i = pending[next++];
      ensure_writable_dir(dirs[i]);
      json config = trials[i];
      config["threads"] = threads_per_job;
      config["test"] = false;  // selection on validation only
      write_file_atomically(dirs[i] / "config.json", config.dump(2) + "\n");
      const pid_t pid = spawn(convkit_binary,
                              {"train", "--config", (dirs[i] / "config.json").string(), "--out", dirs[i].string(),
                               "--quiet", "--no-report"},
                              dirs[i] / "train.log");
      running.push_back({pid, i});
    }
    int status = 0;
    const pid_t done = waitpid(-1, &status, 0);
    if (done < 0) break;
    auto it = std::find_if(running.begin(), running.end(), [&](const Child& c) { return c.pid == done; });
    if (it == running.end()) continue;
    const size_t i = it->trial;
    running.erase(it);
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && finished(dirs[i]);
    if (ok) {
      const json m = read_json(dirs[i] / "metrics.json");
      out << strprintf("[%zu/%zu] %s: valid acc %.2f%% (%s)\n", i + 1, trials.size(), dirs[i].filename().c_str(),
                       100 * m.value("best_valid_acc", 0.0), settings_summary(varying_of(trials[i])).c_str())
          << std::flush;
    } else {
      ++failures;
      out << strprintf("[%zu/%zu] %s: FAILED (see %s)\n", i + 1, trials.size(), dirs[i].filename().c_str(),
                       (dirs[i] / "train.log").c_str())
          << std::flush;
    }
  }

  std::vector<LeaderboardRow> rows;
  for (size_t i = 0; i < trials.size(); ++i) {
    if (!finished(dirs[i])) continue;
    const json m = read_json(dirs[i] / "metrics.json");
    rows.push_back({dirs[i].filename().string(), varying_of(trials[i]), m.value("best_valid_acc", 0.0),
                    m.value("best_valid_loss", 0.0), m.value("total_seconds", 0.0), m.value("epochs_run", int64_t{0})});
  }
  json chosen = nullptr;
  if (!rows.empty()) {
    const auto best = std::max_element(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.valid_acc < b.valid_acc; });
    const std::filesystem::path dir = out_dir / best->trial;
    const TrainOptions settings = read_run_options(dir);
    auto loaded = load_model(dir / "model.pt", "", settings.data_dir);
    const data::Split test = data::load_split(settings.data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", settings.limit);
    torch::manual_seed(settings.seed);
    const auto r = evaluate_test_sets(*loaded.model, test, {loaded.info.mean, loaded.info.std}, settings.rotation,
                                      settings.batch_size, torch::kCPU, false);
    chosen = {{"trial", best->trial},
              {"settings", best->settings},
              {"valid_acc", best->valid_acc},
              {"test_loss", r.test.loss},
              {"test_acc", r.test.acc},
              {"rotated_test_loss", r.rotated_test.loss},
              {"rotated_test_acc", r.rotated_test.acc}};
    write_file_atomically(out_dir / "chosen.json", chosen.dump(2) + "\n");
  }
  write_leaderboard(out_dir, rows, chosen);
  if (!chosen.is_null()) {
    out << strprintf("Chosen by validation: %s (valid acc %.2f%%): Test Acc %.2f%% | Rotated Test Acc %.2f%%\n",
                     chosen["trial"].get<std::string>().c_str(), 100 * chosen["valid_acc"].get<double>(),
                     100 * chosen["test_acc"].get<double>(), 100 * chosen["rotated_test_acc"].get<double>());
  }
  out << "Leaderboard: " << (out_dir / "leaderboard.md").string() << " (.csv, .html)\n";
  return failures == 0 ? 0 : 1;
}

}  // namespace convkit::train
