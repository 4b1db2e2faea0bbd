#include "run/leaderboard.h"

#include <algorithm>
#include <sstream>

#include "report/html.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::run {

using json = nlohmann::json;

namespace {

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

}  // namespace

std::string settings_summary(const json& settings) {
  std::string s;
  for (const auto& [k, v] : settings.items())
    s += (s.empty() ? "" : " ") + k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  return s;
}

void write_leaderboard(const std::filesystem::path& dir, std::vector<LeaderboardRow> rows, const json& chosen_test) {
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.valid_acc > b.valid_acc; });
  std::ostringstream csv, md, html;
  csv << "rank,trial,valid_acc,valid_loss,epochs_run,seconds,settings\n";
  md << "| rank | trial | valid acc | valid loss | epochs | seconds | settings |\n|---|---|---|---|---|---|---|\n";
  html << report::html_page_start("convkit sweep leaderboard")
       << "<h1>Sweep leaderboard</h1><p>Ranked by validation accuracy; the test set is used for the chosen trial "
          "only.</p>"
       << "<table><tr><th>rank</th><th>trial</th><th>valid acc</th><th>valid "
          "loss</th><th>epochs</th><th>seconds</th><th>settings</th></tr>";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    const std::string settings = settings_summary(r.settings);
    csv << i + 1 << "," << r.trial << "," << strprintf("%.6f,%.6f,", r.valid_acc, r.valid_loss) << r.epochs_run << ","
        << strprintf("%.1f", r.seconds) << "," << csv_field(settings) << "\n";
    md << "| " << i + 1 << " | " << r.trial << " | " << strprintf("%.2f%% | %.4f | ", 100 * r.valid_acc, r.valid_loss)
       << r.epochs_run << " | " << strprintf("%.1f", r.seconds) << " | " << settings << " |\n";
    html << "<tr><td>" << i + 1 << "</td><td>" << report::html_escape(r.trial) << "</td>"
         << strprintf("<td>%.2f%%</td><td>%.4f</td>", 100 * r.valid_acc, r.valid_loss) << "<td>" << r.epochs_run
         << "</td>" << strprintf("<td>%.1f</td>", r.seconds) << "<td>" << report::html_escape(settings) << "</td></tr>";
  }
  if (!chosen_test.is_null()) {
    const std::string line =
        strprintf("Chosen: %s, test accuracy %.2f%%, rotated test accuracy %.2f%%",
                  chosen_test.value("trial", std::string()).c_str(), 100 * chosen_test.value("test_acc", 0.0),
                  100 * chosen_test.value("rotated_test_acc", 0.0));
    md << "\n" << line << "\n";
    html << "</table><p><b>" << report::html_escape(line) << "</b></p>";
  } else {
    html << "</table>";
  }
  html << report::kHtmlPageEnd;
  write_file_atomically(dir / "leaderboard.csv", csv.str());
  write_file_atomically(dir / "leaderboard.md", md.str());
  write_file_atomically(dir / "leaderboard.html", html.str());
}

}  // namespace convkit::run
