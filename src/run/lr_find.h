// `convkit lr-find`: the learning-rate range test (Smith, "Cyclical Learning Rates for Training
// Neural Networks", 2015; fastai's lr_find). A fresh network trains a few batches at learning
// rates rising exponentially from very small to very large; the smoothed loss falls, flattens and
// then diverges, and the rate where it falls fastest is a good one to train with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <vector>

#include "run/options.h"

namespace convkit::run {

struct LrFindSettings {
  int64_t steps = 100;     // --steps: batches, each at its own learning rate
  double start_lr = 1e-7;  // --start-lr: the first step's
  double end_lr = 10;      // --end-lr: the last step's
};

// An Error naming the flag of the first setting out of range.
void validate(const LrFindSettings& settings);

// The learning rate of step `step` (0-based): start_lr * (end_lr / start_lr)^(step / (steps - 1)).
double lr_at_step(const LrFindSettings& settings, int64_t step);

// The smoothing of the losses, as fastai's: an exponential moving average (weight kSmoothingBeta
// on the past) divided by 1 - beta^n, so that the first values are not pulled towards the
// average's start at zero.
inline constexpr double kSmoothingBeta = 0.98;
class SmoothedLoss {
 public:
  double add(double loss);  // the smoothed loss after this batch's

 private:
  double average_ = 0, weight_ = 1;  // weight_: beta^n
};

// The test stops once the smoothed loss exceeds this many times its lowest so far.
inline constexpr double kDivergenceFactor = 4;

// The index of the steepest descent of a smoothed loss curve taken at learning rates evenly
// spaced in log lr: the point whose slope (numpy's gradient: the difference of its neighbours
// over two steps, one-sided at the ends) is the most negative, among the points from the first
// tenth of the curve on up to the lowest smoothed loss. The first tenth is left out as fastai's
// lr_find leaves it out: its smoothed loss averages only a few batches, so its slope is noise
// (unless the lowest point lies in it). Past the lowest point the loss only climbs towards
// divergence. The first such point on a tie; 0 for fewer than two points.
size_t steepest_descent(const std::vector<double>& smoothed);

struct LrPoint {
  double lr = 0, loss = 0, smoothed = 0;
};

struct LrFindResult {
  std::vector<LrPoint> points;  // one per step run
  size_t steepest_index = 0;    // steepest_descent of the smoothed losses
  double suggestion = 0;        // points[steepest_index].lr
  bool stopped_early = false;   // the loss diverged before the last step
  std::filesystem::path out_dir;
};

// Where the test writes when --out is not given: runs/lr-find-<model>.
std::filesystem::path lr_find_dir(const TrainOptions& options);

// Seeds as a run does, loads and splits the data, builds the network and optimiser as
// run_training does, trains range.steps batches of the shuffled training split at the
// rising learning rates (reshuffled after each pass) and stops early on divergence; writes
// lr_find.json and lr_find.png into lr_find_dir(options) and prints a summary to `out`. The
// options' learning rate, schedule, epochs, weight average and test settings play no part.
LrFindResult find_learning_rate(const TrainOptions& options, const LrFindSettings& range, std::ostream& out);

}  // namespace convkit::run
