// A run's self-contained HTML report, and everything that goes into it.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <vector>

#include "data/dataset.h"
#include "data/normalization.h"
#include "models/classifier.h"
#include "train/history.h"

namespace convkit::report {

// run_dir/report.html from the run's metrics, history and figures, all embedded.
void write_html_report(const std::filesystem::path& run_dir, const nlohmann::json& metrics,
                       const std::vector<train::EpochRecord>& history);

// A network whose test-set calibration the report sets beside others': the same run without its
// weight average or without test-time augmentation, and with them.
struct CalibrationVariant {
  std::string name;
  models::ClassifierImpl* model;  // nullptr: the analysed model itself
};

// The analyses of the best model, every figure and report.html; returns `metrics` with the
// analyses and the list of figures added, for metrics.json. With `variants`, each one's
// calibration too (metrics.json's calibration_variants, a reliability diagram each, and a table
// of them in the report).
nlohmann::json write_run_report(const std::filesystem::path& run_dir, models::ClassifierImpl& model,
                                const data::Dataset& data, const data::Normalization& norm, const torch::Device& device,
                                const std::vector<train::EpochRecord>& history, nlohmann::json metrics,
                                const std::vector<CalibrationVariant>& variants = {});

}  // namespace convkit::report
