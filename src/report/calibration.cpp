#include "report/calibration.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"
#include "util/format.h"

namespace convkit::report {
namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

void check_shapes(const torch::Tensor& probabilities, const torch::Tensor& labels, int bins) {
  if (bins < 1) throw Error(strprintf("calibration: needs at least one bin, got %d", bins));
  if (probabilities.dim() != 2 || labels.dim() != 1 || probabilities.size(0) != labels.size(0) ||
      probabilities.size(1) < 1)
    throw Error("calibration: expects probabilities [N, classes] and labels [N], got " + shape_of(probabilities) +
                " and " + shape_of(labels));
}

// The bins' inner edges 1/bins ... (bins-1)/bins. A confidence equal to an edge belongs to the
// bin below it, as in Guo et al.'s (lower, upper] bins.
int bin_of(double confidence, const std::vector<double>& inner_edges) {
  return static_cast<int>(std::lower_bound(inner_edges.begin(), inner_edges.end(), confidence) - inner_edges.begin());
}

// Each bin's edges, count, and sums of hits and confidences (divided into means later).
std::vector<CalibrationBin> bin_sums(const torch::Tensor& confidence, const torch::Tensor& correct, int bins) {
  std::vector<CalibrationBin> sums(bins);
  std::vector<double> inner_edges;
  for (int b = 0; b < bins; ++b) {
    sums[b].lower = static_cast<double>(b) / bins;
    sums[b].upper = static_cast<double>(b + 1) / bins;
    if (b > 0) inner_edges.push_back(sums[b].lower);
  }
  const auto conf = confidence.accessor<double, 1>();
  const auto hit = correct.accessor<bool, 1>();
  for (int64_t i = 0; i < confidence.size(0); ++i) {
    CalibrationBin& bin = sums[bin_of(conf[i], inner_edges)];
    ++bin.count;
    bin.accuracy += hit[i];
    bin.confidence += conf[i];
  }
  return sums;
}

}  // namespace

Calibration calibration(const torch::Tensor& probabilities, const torch::Tensor& labels, int bins) {
  check_shapes(probabilities, labels, bins);
  const auto [confidence, predicted] = probabilities.detach().to(torch::kCPU, torch::kDouble).max(1);
  const torch::Tensor correct = predicted.eq(labels.detach().to(torch::kCPU, torch::kInt64));
  Calibration c;
  c.samples = confidence.size(0);
  c.bins = bin_sums(confidence, correct, bins);
  for (CalibrationBin& bin : c.bins) {
    if (bin.count == 0) continue;
    bin.accuracy /= static_cast<double>(bin.count);
    bin.confidence /= static_cast<double>(bin.count);
    c.ece += static_cast<double>(bin.count) / static_cast<double>(c.samples) * std::abs(bin.accuracy - bin.confidence);
  }
  return c;
}

nlohmann::json calibration_json(const Calibration& calibration) {
  nlohmann::json bins = nlohmann::json::array();
  for (const CalibrationBin& b : calibration.bins) {
    bins.push_back({{"lower", b.lower},
                    {"upper", b.upper},
                    {"count", b.count},
                    {"accuracy", b.accuracy},
                    {"confidence", b.confidence}});
  }
  return {{"ece", calibration.ece}, {"samples", calibration.samples}, {"bins", bins}};
}

}  // namespace convkit::report
