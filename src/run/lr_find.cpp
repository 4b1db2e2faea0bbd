#include "run/lr_find.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <ostream>

#include "report/plots.h"
#include "run/settings.h"
#include "run/training_setup.h"
#include "train/optimizer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/progress.h"
#include "util/runtime.h"

namespace convkit::run {
namespace {

// numpy.gradient of evenly spaced values, at i (at least two values).
double slope_at(const std::vector<double>& y, size_t i) {
  if (i == 0) return y[1] - y[0];
  if (i + 1 == y.size()) return y[i] - y[i - 1];
  return (y[i + 1] - y[i - 1]) / 2;
}

// The training steps at the rising rates, over the shuffled training split (a fresh shuffle for
// each pass, as each epoch of a run), until the last step or divergence. Each step is a one-batch
// train_epoch, so that it is the run's own step (shards, weight decay, augmentation, mixing).
std::vector<LrPoint> run_range_test(const TrainOptions& options, const LrFindSettings& range, const TrainingData& d,
                                    Network& net, const torch::Device& device) {
  const train::StepSettings steps = step_settings(options, d.norm, net, nullptr);
  const int64_t images = d.split.train.size(0), batch = options.batch_size;
  const int64_t batches_per_pass = (images + batch - 1) / batch;
  Progress bar("LR range", range.steps * batch, !options.quiet);
  std::vector<LrPoint> points;
  SmoothedLoss smoothed;
  double lowest = std::numeric_limits<double>::infinity();
  torch::Tensor order;
  for (int64_t step = 0; step < range.steps; ++step) {
    const int64_t start = step % batches_per_pass * batch;
    if (start == 0) order = shuffled_training_order(d);
    const torch::Tensor rows = order.slice(0, start, std::min(images, start + batch));
    LrPoint point{lr_at_step(range, step)};
    train::set_learning_rate(*net.optimizer, point.lr);
    try {
      point.loss = train::train_epoch(*net.model, *net.optimizer, d.train_inputs, d.data.train.labels, rows, batch,
                                      device, steps)
                       .loss;
    } catch (const train::Diverged&) {
      break;  // a loss that is not finite has nothing to record
    }
    point.smoothed = smoothed.add(point.loss);
    points.push_back(point);
    bar.advance(rows.size(0));
    lowest = std::min(lowest, point.smoothed);
    if (point.smoothed > kDivergenceFactor * lowest) break;
  }
  return points;
}

std::vector<double> smoothed_losses(const std::vector<LrPoint>& points) {
  std::vector<double> smoothed;
  for (const LrPoint& p : points) smoothed.push_back(p.smoothed);
  return smoothed;
}

nlohmann::json lr_find_json(const TrainOptions& options, int threads, const LrFindSettings& range,
                            const LrFindResult& r) {
  nlohmann::json points = nlohmann::json::array();
  for (const LrPoint& p : r.points) points.push_back({{"lr", p.lr}, {"loss", p.loss}, {"smoothed", p.smoothed}});
  return {{"settings", settings_json(options, threads)},
          {"range", {{"steps", range.steps}, {"start_lr", range.start_lr}, {"end_lr", range.end_lr}}},
          {"points", points},
          {"suggestion", r.suggestion},
          {"steepest_index", r.steepest_index},
          {"stopped_early", r.stopped_early}};
}

void write_outputs(const TrainOptions& options, int threads, const LrFindSettings& range, const LrFindResult& r) {
  write_file_atomically(r.out_dir / "lr_find.json", lr_find_json(options, threads, range, r).dump(2) + "\n");
  std::vector<double> lrs;
  for (const LrPoint& p : r.points) lrs.push_back(p.lr);
  report::plot_lr_range(r.out_dir / "lr_find.png", "Learning-rate range test: " + options.model, lrs,
                        smoothed_losses(r.points), r.steepest_index);
}

void print_summary(const LrFindSettings& range, const LrFindResult& r, std::ostream& out) {
  out << strprintf("Learning-rate range test: %zu of %lld steps, lr %.3g to %.3g%s\n", r.points.size(),
                   static_cast<long long>(range.steps), range.start_lr, r.points.back().lr,
                   r.stopped_early ? " (stopped early: the loss diverged)" : "");
  out << strprintf("Suggested learning rate: %.3g (steepest descent of the smoothed loss, step %zu)\n", r.suggestion,
                   r.steepest_index + 1);
  out << "Outputs written to " << r.out_dir.string() << "/ (lr_find.json, lr_find.png)\n";
}

}  // namespace

void validate(const LrFindSettings& s) {
  if (s.steps < 2) {
    throw Error(strprintf("--steps must be at least 2 (a first and a last learning rate), got %lld",
                          static_cast<long long>(s.steps)));
  }
  if (!(s.start_lr > 0) || !std::isfinite(s.start_lr)) {
    throw Error(strprintf("--start-lr must be a positive number, got %g", s.start_lr));
  }
  if (!(s.end_lr > s.start_lr) || !std::isfinite(s.end_lr)) {
    throw Error(strprintf("--end-lr must be a number above --start-lr (%g), got %g", s.start_lr, s.end_lr));
  }
}

double lr_at_step(const LrFindSettings& s, int64_t step) {
  return s.start_lr * std::pow(s.end_lr / s.start_lr, static_cast<double>(step) / static_cast<double>(s.steps - 1));
}

double SmoothedLoss::add(double loss) {
  average_ = kSmoothingBeta * average_ + (1 - kSmoothingBeta) * loss;
  weight_ *= kSmoothingBeta;
  return average_ / (1 - weight_);
}

size_t steepest_descent(const std::vector<double>& smoothed) {
  if (smoothed.size() < 2) return 0;
  const auto lowest = static_cast<size_t>(std::min_element(smoothed.begin(), smoothed.end()) - smoothed.begin());
  const size_t first = std::min(smoothed.size() / 10, lowest);
  size_t steepest = first;
  for (size_t i = first + 1; i <= lowest; ++i)
    if (slope_at(smoothed, i) < slope_at(smoothed, steepest)) steepest = i;
  return steepest;
}

std::filesystem::path lr_find_dir(const TrainOptions& options) {
  return options.out_dir.empty() ? std::filesystem::path("runs") / ("lr-find-" + options.model)
                                 : std::filesystem::path(options.out_dir);
}

LrFindResult find_learning_rate(const TrainOptions& options, const LrFindSettings& range, std::ostream& out) {
  validate(options);
  validate(range);
  LrFindResult result;
  result.out_dir = lr_find_dir(options);
  ensure_writable_dir(result.out_dir);  // before any work: a bad --out must not cost the test
  const int threads = configure_threads(options.threads);
  const torch::Device device(resolve_device(options.device));

  // Seeded first, as a run is: the same seed draws the same split, initial weights and shuffles.
  torch::manual_seed(options.seed);
  const TrainingData data = load_training_data(options, out);
  Network net;
  net.model = make_network(options, data.data, device);
  fit_to_training_images(*net.model, data);
  out << network_line(options, *net.model, device, threads) << std::flush;
  prepare_optimizer(net, options, threads, device);

  result.points = run_range_test(options, range, data, net, device);
  if (result.points.empty()) {
    throw Error("the first batch's loss is not finite, before any update: nothing to test (check --data and --model)");
  }
  result.stopped_early = static_cast<int64_t>(result.points.size()) < range.steps;
  result.steepest_index = steepest_descent(smoothed_losses(result.points));
  result.suggestion = result.points[result.steepest_index].lr;
  write_outputs(options, threads, range, result);
  print_summary(range, result, out);
  return result;
}

}  // namespace convkit::run
