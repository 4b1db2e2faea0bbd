#include "report/compare.h"

#include <nlohmann/json.hpp>
#include <ostream>
#include <sstream>

#include "eval/rotation_curve.h"
#include "report/html.h"
#include "report/plots.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::report {

void compare_runs(const std::vector<std::filesystem::path>& runs, const std::filesystem::path& out_dir,
                  std::ostream& out) {
  ensure_writable_dir(out_dir);
  std::vector<Series> series;
  std::ostringstream rows;
  for (const auto& run : runs) {
    const auto metrics = read_json_file(run / "metrics.json");
    if (!metrics.contains("rotation_curve")) {
      throw file_error((run / "metrics.json").string(),
                       "has no rotation_curve; run `convkit report " + run.string() + "` first");
    }
    Series s{run.filename().string() + " (" + metrics.value("model", std::string("?")) + ")"};
    for (const auto& point : metrics["rotation_curve"]) {
      s.x.push_back(point.at("degrees").get<double>());
      s.y.push_back(point.at("accuracy").get<double>());
    }
    rows << strprintf("<tr><td>%s</td><td>%s</td><td>%.2f%%</td><td>%.2f%%</td>", html_escape(run.string()).c_str(),
                      html_escape(metrics.value("model", std::string("?"))).c_str(),
                      100 * metrics.value("test_acc", 0.0), 100 * metrics.value("rotated_test_acc", 0.0));
    for (double acc : s.y) rows << strprintf("<td>%.1f</td>", 100 * acc);
    rows << "</tr>";
    series.push_back(std::move(s));
  }
  plot_lines(out_dir / "rotation.png", "Test accuracy against rotation angle", "Rotation (degrees)", "Accuracy",
             series);
  std::ostringstream h;
  h << html_page_start("convkit comparison")
    << "<h1>Comparison under rotation</h1><table><tr><th>run</th><th>model</th><th>test acc</th>"
    << "<th>rotated acc</th>";
  for (double a : eval::rotation_curve_angles()) h << strprintf("<th>%g&deg;</th>", a);
  h << "</tr>" << rows.str() << "</table>" << embedded_png(out_dir / "rotation.png", "accuracy against rotation")
    << kHtmlPageEnd;
  write_file_atomically(out_dir / "compare.html", h.str());
  out << "Comparison written to " << (out_dir / "compare.html").string() << " and "
      << (out_dir / "rotation.png").string() << "\n";
}

}  // namespace convkit::report
