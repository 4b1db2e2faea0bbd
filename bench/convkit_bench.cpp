// Timings of convkit's hot paths on the real FashionMNIST, as JSON on stdout. bench/run.py runs
// it next to the Python tutorial and prints the comparison table.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>

#include "data/dataset.h"
#include "data/normalization.h"
#include "eval/predict.h"
#include "models/registry.h"
#include "train/loop.h"
#include "train/optimizer.h"
#include "train/shards.h"
#include "util/allocator.h"
#include "util/runtime.h"

using namespace convkit;
using Clock = std::chrono::steady_clock;

namespace {

double seconds(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

struct Data {
  torch::Tensor train_inputs, train_labels, test_pixels, test_inputs, test_labels;
  data::Normalization norm;
};

// What `convkit train` sets up for a network: its kernels, its optimiser (Adam, lr 1e-3) and
// outside exact mode one flat parameter buffer and the batch shards over the threads.
std::unique_ptr<torch::optim::Optimizer> prepare(models::ClassifierImpl& model, const std::string& model_name,
                                                 bool exact, train::StepSettings& settings) {
  model.set_exact(exact);
  train::FastPath fast = train::prepare_fast_path(model, model_name, torch::get_num_threads(), torch::kCPU);
  settings.shards = fast.shards;
  auto optimizer = train::make_optimizer(train::OptimizerSettings{}, fast.parameters, exact);
  settings.optimizer_sums_shards = train::share_shard_gradients(*optimizer, settings.shards);
  return optimizer;
}

// One training epoch over the tutorial's 54,000 images: seconds of the training pass alone,
// and the median step (robust to the other tenants of a shared machine), in milliseconds.
struct EpochTiming {
  double seconds = 0, median_step_ms = 0;
};

EpochTiming epoch_timing(const Data& d, const std::string& model_name, int64_t batch, bool exact = false) {
  torch::manual_seed(1234);
  auto model = models::make_model(model_name);
  train::StepSettings settings;
  const auto optimizer = prepare(*model, model_name, exact, settings);
  const torch::Tensor order = torch::randperm(54000);
  std::vector<double> steps;
  Clock::time_point last;
  settings.before_step = [&](int64_t step) {
    const auto now = Clock::now();
    if (step > 0) steps.push_back(std::chrono::duration<double, std::milli>(now - last).count());
    last = now;
  };
  const auto start = Clock::now();
  train::train_epoch(*model, *optimizer, d.train_inputs, d.train_labels, order, batch, torch::kCPU, settings);
  EpochTiming t;
  t.seconds = seconds(start);
  std::nth_element(steps.begin(), steps.begin() + steps.size() / 2, steps.end());
  t.median_step_ms = steps[steps.size() / 2];
  return t;
}

// Milliseconds per training step at `batch` (median-free mean over `steps` after warm-up).
double step_ms(const Data& d, const std::string& model_name, int64_t batch, int steps, bool exact = false) {
  torch::manual_seed(1);
  auto model = models::make_model(model_name);
  train::StepSettings settings;
  const auto optimizer = prepare(*model, model_name, exact, settings);
  const torch::Tensor order = torch::randperm(54000).slice(0, 0, batch * (steps + 3));
  train::train_epoch(*model, *optimizer, d.train_inputs, d.train_labels, order.slice(0, 0, batch * 3), batch,
                     torch::kCPU, settings);
  const auto start = Clock::now();
  train::train_epoch(*model, *optimizer, d.train_inputs, d.train_labels, order.slice(0, batch * 3), batch, torch::kCPU,
                     settings);
  return seconds(start) / steps * 1e3;
}

}  // namespace

// Usage: convkit_bench [--quick]                          everything but the epochs, JSON on stdout
//        convkit_bench --epoch MODEL THREADS [--exact] [--quick]   one training epoch: {"seconds": s}
// bench/run.py times each epoch configuration in a fresh process, as `convkit train` runs.
int main(int argc, char** argv) {
  convkit::configure_allocator();  // the policy convkit itself runs with
  const std::vector<std::string> args(argv + 1, argv + argc);
  const auto has = [&](const char* flag) { return std::find(args.begin(), args.end(), flag) != args.end(); };
  const bool quick = has("--quick");  // smoke run for tests
  const bool one_epoch = args.size() >= 3 && args[0] == "--epoch";
  if (one_epoch) configure_threads(std::stoi(args[2]));
  const data::Dataset mnist = data::load_dataset(data::kDefaultDataDir);
  Data d;
  d.norm = data::normalization_from(mnist.train.images);
  d.train_inputs = data::to_model_input(mnist.train.images, d.norm);
  d.train_labels = mnist.train.labels;
  d.test_inputs = data::to_model_input(mnist.test.images, d.norm);
  d.test_labels = mnist.test.labels;
  nlohmann::json out;

  if (one_epoch) {
    // --exact: LibTorch's own kernels, per-parameter Adam, no batch shards (the parity mode).
    const bool exact = has("--exact");
    if (quick) {
      out["seconds"] = step_ms(d, args[1], 64, 20, exact) * 844 / 1e3;
    } else {
      const EpochTiming t = epoch_timing(d, args[1], 64, exact);
      out["seconds"] = t.seconds;
      out["median_step_ms"] = t.median_step_ms;
    }
    std::cout << out.dump() << std::endl;
    return 0;
  }
  configure_threads(2);

  // Evaluation throughput over the 10,000 test images.
  auto lenet = models::make_model("lenet");
  for (int64_t batch : {64, 256, 1000}) {
    const auto start = Clock::now();
    train::evaluate(*lenet, d.test_inputs, d.test_labels, batch, torch::kCPU);
    out["eval_images_per_second"][std::to_string(batch)] = 10000 / seconds(start);
  }

  // One image through the network, inside the process (normalisation included).
  {
    configure_threads(1);
    const torch::Tensor image = mnist.test.images.slice(0, 0, 1).to(torch::kFloat);
    for (int i = 0; i < 20; ++i) eval::predict_probabilities(*lenet, image, d.norm, torch::kCPU);
    const int reps = quick ? 50 : 500;
    const auto start = Clock::now();
    for (int i = 0; i < reps; ++i) eval::predict_probabilities(*lenet, image, d.norm, torch::kCPU);
    out["predict_ms"] = seconds(start) / reps * 1e3;
    configure_threads(2);
  }

  // Cost against batch size, and against network width (LeNet's channels and units times k).
  const int steps = quick ? 5 : 30;
  for (int64_t batch : {32, 64, 128, 256, 512, 1024}) {
    const double ms = step_ms(d, "lenet", batch, steps);
    out["batch_scaling"].push_back({{"batch", batch}, {"ms_per_step", ms}, {"us_per_image", ms * 1e3 / batch}});
  }
  for (int k : {1, 2, 4}) {
    const std::string spec = "c" + std::to_string(6 * k) + "k5-mp2-c" + std::to_string(16 * k) + "k5-mp2-fc" +
                             std::to_string(120 * k) + "-fc" + std::to_string(84 * k);
    const double ms = step_ms(d, spec, 64, steps);
    out["width_scaling"].push_back({{"width", k},
                                    {"model", spec},
                                    {"parameters", models::count_parameters(*models::make_model(spec))},
                                    {"ms_per_step", ms}});
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
