// A run's figures (RUN_DIR/figures/*.png) and its self-contained HTML report, and the
// comparison of several runs.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/models.h"

namespace convkit::report {

inline constexpr int64_t kPcaImages = 5000;   // first N test images in pca.png
inline constexpr int64_t kTsneImages = 1000;  // first N test images in tsne.png
inline constexpr int64_t kRotationImages = 2000;  // first N test images in rotation.png
std::vector<double> rotation_curve_angles();  // 0, 15, ..., 180

// Computes the analyses (confusion matrix, classification report, rotation curve), adds them to
// `metrics`, and writes every figure into run_dir/figures/ (`history` as in history.json).
void write_figures(const std::filesystem::path& run_dir, models::ClassifierImpl& model, const data::Mnist& mnist,
                   data::Normalization norm, const torch::Device& device, const nlohmann::json& history,
                   nlohmann::json& metrics);

// run_dir/report.html from metrics.json, history.json and the figures, all embedded.
void write_html_report(const std::filesystem::path& run_dir, const nlohmann::json& metrics,
                       const nlohmann::json& history);

// `convkit report RUN_DIR`: reloads the best checkpoint and data of a finished run and
// regenerates its analyses, figures and report.
void regenerate_report(const std::filesystem::path& run_dir, const torch::Device& device, std::ostream& out);

// `convkit compare`: accuracy-vs-rotation of several runs in one figure and one HTML page.
void compare_runs(const std::vector<std::filesystem::path>& runs, const std::filesystem::path& out_dir,
                  std::ostream& out);

}  // namespace convkit::report
