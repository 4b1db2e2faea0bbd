// How far a classifier's confidence can be trusted: expected calibration error (ECE) and the
// per-bin numbers of a reliability diagram.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <vector>

namespace convkit::report {

inline constexpr int kCalibrationBins = 15;  // Guo et al. (2017)'s choice, the usual one

// The predictions whose highest probability lies in (lower, upper]. Empty bins have 0 accuracy
// and confidence.
struct CalibrationBin {
  double lower = 0, upper = 0;
  int64_t count = 0;
  double accuracy = 0;    // share of them whose most probable class is the label
  double confidence = 0;  // mean of their highest probabilities
};

struct Calibration {
  double ece = 0;  // sum over bins of count / N * |accuracy - confidence|
  int64_t samples = 0;
  std::vector<CalibrationBin> bins;
};

// `probabilities` [N, classes] (each row sums to 1) against `labels` [N], in `bins` equal-width
// bins of the highest probability; any set of predictions (plain, augmented, averaged), so that
// two can be compared.
Calibration calibration(const torch::Tensor& probabilities, const torch::Tensor& labels, int bins = kCalibrationBins);

// {"ece", "samples", "bins": [{"lower", "upper", "count", "accuracy", "confidence"}, ...]}.
nlohmann::json calibration_json(const Calibration& calibration);

}  // namespace convkit::report
