// `convkit report RUN_DIR`: a finished run's analyses, figures and report.html made again.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <iosfwd>

namespace convkit::run {

// Reloads the run's best checkpoint and data (from its run.json) and rewrites its analyses in
// metrics.json, its figures and its report.
void regenerate_report(const std::filesystem::path& run_dir, const torch::Device& device, std::ostream& out);

}  // namespace convkit::run
