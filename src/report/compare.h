// `convkit compare`: several runs' accuracy under rotation in one figure and one HTML page.
#pragma once

#include <filesystem>
#include <iosfwd>
#include <vector>

namespace convkit::report {

// Reads each run's metrics.json; writes out_dir/rotation.png and out_dir/compare.html.
void compare_runs(const std::vector<std::filesystem::path>& runs, const std::filesystem::path& out_dir,
                  std::ostream& out);

}  // namespace convkit::report
