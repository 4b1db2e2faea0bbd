// A sweep's leaderboard: its trials ranked by validation accuracy, as CSV, Markdown and HTML.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace convkit::run {

struct LeaderboardRow {
  std::string trial;
  nlohmann::json settings;  // the settings that vary between trials
  double valid_acc = 0, valid_loss = 0, seconds = 0;
  int64_t epochs_run = 0;
};

// Writes leaderboard.csv, .md and .html in `dir`, best validation accuracy first.
void write_leaderboard(const std::filesystem::path& dir, std::vector<LeaderboardRow> rows,
                       const nlohmann::json& chosen_test);

// "key=value key=value": the settings a trial varies, on one line.
std::string settings_summary(const nlohmann::json& settings);

}  // namespace convkit::run
