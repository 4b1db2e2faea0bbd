#include "run/training.h"

#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <ostream>

#include "checkpoint/model_info.h"
#include "checkpoint/resume.h"
#include "checkpoint/state_dict.h"
#include "data/normalization.h"
#include "dist/environment.h"
#include "dist/process_group.h"
#include "eval/test_sets.h"
#include "models/registry.h"
#include "models/test_time_augmentation.h"
#include "report/run_report.h"
#include "run/run_dir.h"
#include "run/run_lock.h"
#include "run/settings.h"
#include "run/training_setup.h"
#include "train/pytorch_random.h"
#include "train/schedule.h"
#include "train/weight_average.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/runtime.h"
#include "util/stopwatch.h"

namespace convkit::run {
namespace {

// Where this process stands: alone, or one rank of a data-parallel group, of which only rank 0
// prints and writes.
struct Place {
  const dist::ProcessGroup* group = nullptr;
  bool main = true;
  std::ostream& out;  // rank 0's: the caller's stream; the others': discarded
};

// Parameters and buffers (batch norm's running statistics), in registration order.
std::vector<torch::Tensor> model_state(const models::ClassifierImpl& model, bool with_parameters) {
  std::vector<torch::Tensor> state = with_parameters ? model.parameters() : std::vector<torch::Tensor>{};
  for (const auto& b : model.buffers()) state.push_back(b);
  return state;
}

// What the ranks must share for their numbers to be one run's (besides the data): the settings,
// except the threads, each rank's share, and --data, a path that may differ between machines.
nlohmann::json shared_settings(const TrainOptions& options) {
  nlohmann::json s = settings_json(options, 0);
  s.erase("threads");
  s.erase("data_dir");
  return s;
}

// The weight average of `model` (--ema), a network built like it. Building draws initial weights
// from the global generator: its state is put back, so that --ema changes no other draw.
std::unique_ptr<train::WeightAverage> make_weight_average(const TrainOptions& options, const data::Dataset& data,
                                                          const models::ClassifierImpl& model,
                                                          const torch::Device& device) {
  const torch::Tensor state = train::global_generator_state();
  models::Classifier copy = make_network(options, data, device);
  train::set_global_generator_state(state);
  return std::make_unique<train::WeightAverage>(copy, model, options.ema);
}

// The network with the resume point's weights when resuming, its weight average (--ema), and
// the optimiser.
Network build_network(const TrainOptions& options, const RunDir& run, const std::string& resume_archive,
                      const TrainingData& d, int threads, const torch::Device& device, const Place& place) {
  std::ostream& out = place.out;
  Network n;
  n.model = make_network(options, d.data, device);
  fit_to_training_images(*n.model, d);
  if (options.resume) checkpoint::load_resume_weights(resume_archive, run.resume(), *n.model);
  if (place.group) place.group->broadcast(model_state(*n.model, true));  // as DDP starts: rank 0's weights
  if (options.ema > 0) {
    n.average = make_weight_average(options, d.data, *n.model, device);
    if (options.resume) checkpoint::load_resume_average(resume_archive, run.resume(), *n.average);
  }
  out << network_line(options, *n.model, device, threads) << std::flush;
  if (place.group) {
    const int ranks = place.group->size();
    out << strprintf(
        "Data parallel: %d processes (c10d, Gloo) | global batch %lld, about %lld per process | gradient wait: %s\n",
        ranks, static_cast<long long>(options.batch_size), static_cast<long long>(options.batch_size / ranks),
        dist::gradient_wait_name(place.group->gradient_wait()).c_str());
  }
  prepare_optimizer(n, options, threads, device);
  return n;
}

// Where the epochs stand: completed ones, their history, the best so far.
struct RunState {
  checkpoint::ResumePoint point;
  std::vector<train::EpochRecord> history;
};

// resume.pt's bytes: read by rank 0, handed to the others.
std::string resume_archive(const TrainOptions& options, const RunDir& run, const Place& place) {
  if (!options.resume) return "";
  const std::string bytes = place.main ? checkpoint::read_resume_file(run.resume()) : std::string();
  return place.group ? place.group->broadcast_bytes(bytes) : bytes;
}

RunState start_or_resume(const TrainOptions& options, const RunDir& run, const std::string& resume_archive,
                         torch::optim::Optimizer& optimizer, const TrainingData& d, const Place& place) {
  std::ostream& out = place.out;
  RunState p;
  if (!options.resume) {
    const auto classes = static_cast<int64_t>(d.data.classes.size());
    if (place.main) {
      checkpoint::write_checkpoint_info(run.model(), {options.model, classes, d.norm, d.data.classes, d.data.shape()});
    }
    return p;
  }
  p.point = checkpoint::load_resume_point(resume_archive, run.resume(), optimizer);
  const int64_t done = p.point.completed_epochs;
  // A run whose epochs are done but whose test or report was cut short is finished, not refused.
  if (place.main && done >= options.epochs && run.finished()) {
    throw Error("--resume: " + run.dir.string() + " already completed " + std::to_string(done) +
                " epochs; pass a larger --epochs to train further");
  }
  if (place.main) p.history = read_history(run, done);
  if (done >= options.epochs) {
    out << "Finishing the run: its " << done << " epochs are done, its test and report are not\n";
  } else {
    out << "Resuming after epoch " << done << " of " << options.epochs << "\n";
  }
  return p;
}

// Optimiser steps in one epoch: the batches of the training split, the last one short.
int64_t steps_per_epoch(const TrainOptions& options, const TrainingData& d) {
  return (d.split.train.size(0) + options.batch_size - 1) / options.batch_size;
}

// One epoch as the tutorial's loop runs it: a fresh shuffle, train, then validate.
train::EpochRecord run_epoch(int64_t epoch, const TrainOptions& options, const TrainingData& d, Network& net,
                             train::StepSettings& steps, const torch::Device& device, const Place& place) {
  const Stopwatch clock;
  const bool progress = !options.quiet && place.main;
  if (place.group) {
    // Each rank's own draws (dropout) restart every epoch from (seed, rank, epoch): a resumed run
    // draws what an uninterrupted one would.
    const uint64_t rank = static_cast<uint64_t>(place.group->rank());
    steps.parallel.generator_state = train::generator_state_for_seed(
        options.seed ^ (0x9E3779B97F4A7C15ULL * (rank + 1)) ^ (0xC2B2AE3D27D4EB4FULL * static_cast<uint64_t>(epoch)));
  }
  const torch::Tensor order = shuffled_training_order(d);
  steps.first_step = (epoch - 1) * steps_per_epoch(options, d);
  train::EpochRecord record;
  record.epoch = epoch;
  record.train = train::train_epoch(*net.model, *net.optimizer, d.train_inputs, d.data.train.labels, order,
                                    options.batch_size, device, steps, progress);
  record.train_seconds = clock.seconds();
  // Batch norm's running statistics are each rank's own: validation uses rank 0's, as DDP's
  // buffer broadcast does.
  if (place.group) place.group->broadcast(model_state(*net.model, false));
  if (place.group && net.average) place.group->broadcast(model_state(net.average->model(), false));
  train::draw_loader_base_seed();
  record.valid = train::evaluate(*net.evaluated(), d.valid_inputs, d.valid_labels, options.batch_size, device, progress,
                                 place.group);
  record.seconds = clock.seconds();
  return record;
}

// Keeps model.pt at the lowest validation loss, prints the epoch, and records it in
// history.json and resume.pt so that an interruption loses at most the epoch in progress.
void finish_epoch(const train::EpochRecord& record, const RunDir& run, Network& net, RunState& p, const Place& place) {
  const bool better = record.valid.loss < p.point.best_valid_loss;
  if (better) {
    p.point.best_valid_loss = record.valid.loss;
    p.point.best_epoch = record.epoch;
  }
  p.point.completed_epochs = record.epoch;
  if (!place.main) return;
  if (better) checkpoint::save_state_dict(*net.evaluated(), run.model());
  place.out << train::epoch_lines(record) << std::flush;
  p.history.push_back(record);
  write_history(run, p.history);
  checkpoint::save_resume_point(run.resume(), *net.model, *net.optimizer, p.point, net.average.get());
}

// The best epoch's weights, from model.pt (rank 0's, handed to the others).
void load_best_weights(const RunDir& run, models::ClassifierImpl& model, const Place& place) {
  if (place.main) checkpoint::load_state_dict(model, checkpoint::read_state_dict(run.model()), run.model().string());
  if (place.group) place.group->broadcast(model_state(model, true));
}

bool stops_early(const TrainOptions& options, const RunState& p, std::ostream& out) {
  const int64_t epoch = p.point.completed_epochs;
  if (options.patience == 0 || epoch - p.point.best_epoch < options.patience) return false;
  out << "Early stopping after epoch " << epoch << ": no better validation loss in " << options.patience << " epochs\n";
  return true;
}

nlohmann::json run_metrics(const TrainOptions& options, int threads, const TrainingData& d, const Network& net,
                           const RunState& p, const torch::Device& device, const Place& place) {
  const train::EpochRecord& best = p.history.at(p.point.best_epoch - 1);
  nlohmann::json metrics = settings_json(options, threads);
  metrics.update(
      {{"parameters", models::count_parameters(*net.model)},
       {"epochs_run", static_cast<int64_t>(p.history.size())},
       {"best_epoch", p.point.best_epoch},
       {"best_valid_loss", best.valid.loss},
       {"best_valid_acc", best.valid.acc},
       {"device", device.str()},
       {"normalization", checkpoint::normalization_json(d.norm)},
       {"input",
        {{"channels", d.data.shape().channels}, {"height", d.data.shape().height}, {"width", d.data.shape().width}}},
       {"examples",
        {{"train", d.split.train.size(0)}, {"valid", d.split.valid.size(0)}, {"test", d.data.test.images.size(0)}}}});
  if (place.group) {
    const dist::ProcessGroup& g = *place.group;
    const int64_t calls = std::max<int64_t>(1, g.allreduce_calls());
    metrics["distributed"] = {{"backend", "gloo"},
                              {"world_size", g.size()},
                              {"gradient_wait", dist::gradient_wait_name(g.gradient_wait())},
                              {"allreduce_calls", g.allreduce_calls()},
                              {"allreduce_seconds", g.allreduce_seconds()},
                              {"allreduce_seconds_per_call", g.allreduce_seconds() / static_cast<double>(calls)}};
  }
  return metrics;
}

// The network the test sets see: the evaluated one, with --tta on its views.
models::Classifier tested_network(const TrainOptions& options, const Network& net, const TrainingData& data) {
  return models::with_tta(net.evaluated(), models::parse_tta(options.tta), data::normalized_black(data.norm));
}

// The test sets on the tested network, and their lines.
eval::TestResults run_test_sets(const TrainOptions& options, const Network& net, const TrainingData& data,
                                const torch::Device& device, const Place& place) {
  const models::Classifier tested = tested_network(options, net, data);
  const eval::TestResults tests =
      eval::evaluate_test_sets(*tested, data.data.test, data.norm, options.rotation, options.batch_size, device,
                               !options.quiet && place.main, place.group);
  place.out << eval::test_lines(tests);
  return tests;
}

void record_tests(const eval::TestResults& tests, RunResult& result, nlohmann::json& metrics) {
  result.test = tests.test;
  result.rotated_test = tests.rotated_test;
  metrics.update({{"test_loss", tests.test.loss},
                  {"test_acc", tests.test.acc},
                  {"rotated_test_loss", tests.rotated_test.loss},
                  {"rotated_test_acc", tests.rotated_test.acc}});
}

// With a weight average or test-time augmentation, the networks whose calibration the report
// compares: the trained weights alone (at the last epoch), then with each as the test used them.
std::vector<report::CalibrationVariant> calibration_variants(const TrainOptions& options, const Network& net,
                                                             models::ClassifierImpl& tested) {
  std::vector<report::CalibrationVariant> variants;
  if (net.average) {
    variants.push_back({"trained weights, last epoch", net.model.get()});
    variants.push_back({strprintf("weight average (--ema %g)", options.ema), nullptr});
  }
  if (&tested != net.evaluated().get()) {
    if (variants.empty()) variants.push_back({"trained weights", nullptr});
    variants.push_back({variants.back().name + " + test-time augmentation (" + options.tta + ")", &tested});
  }
  return variants;
}

// The report (figures/, report.html) when asked for and tested, then metrics.json.
void write_outputs(const TrainOptions& options, const RunDir& run, const Network& net, const TrainingData& d,
                   const std::vector<train::EpochRecord>& history, const torch::Device& device, nlohmann::json metrics,
                   std::ostream& out) {
  const bool report = options.report && options.test;
  if (report) {
    const Stopwatch report_clock;
    const models::Classifier tested = tested_network(options, net, d);
    metrics = report::write_run_report(run.dir, *net.evaluated(), d.data, d.norm, device, history, metrics,
                                       calibration_variants(options, net, *tested));
    metrics["report_seconds"] = report_clock.seconds();
  }
  write_file_atomically(run.metrics(), metrics.dump(2) + "\n");
  out << "Outputs written to " << run.dir.string() << "/ (model.pt, history.json, metrics.json"
      << (report ? ", report.html, figures/" : "") << ")\n";
}

}  // namespace

RunResult run_training(const TrainOptions& given, std::ostream& out, const dist::ProcessGroup* group) {
  TrainOptions options = given;
  options.world_size = group ? group->size() : 1;
  validate(options);
  std::ostream discard(nullptr);
  const Place place{group, !group || group->is_main(), !group || group->is_main() ? out : discard};
  const RunDir run{out_dir_for(options)};
  if (place.main) ensure_writable_dir(run.dir);  // before any work: a bad --out must not cost a training run
  const std::optional<RunLock> lock = place.main ? std::make_optional<RunLock>(run.dir) : std::nullopt;
  const int threads = configure_threads(
      group ? dist::threads_per_process(options.threads, group->environment().local_world_size) : options.threads);
  const torch::Device device(resolve_device(options.device));
  const Stopwatch run_clock;
  if (group) group->agree("settings", shared_settings(options));

  // The order of everything that draws from the global generator below mirrors the tutorial.
  torch::manual_seed(options.seed);
  TrainingData data = load_training_data(options, place.out, group);
  const std::string resume_bytes = resume_archive(options, run, place);
  Network net = build_network(options, run, resume_bytes, data, threads, device, place);
  RunState state = start_or_resume(options, run, resume_bytes, *net.optimizer, data, place);
  if (place.main) {
    forget_progress(run, options.resume);
    // The machine's thread budget, which a resume splits between its processes again.
    const int machine_threads = group ? threads * group->environment().local_world_size : threads;
    write_file_atomically(run.settings(), settings_json(options, machine_threads).dump(2) + "\n");
  }

  const int64_t epoch_steps = steps_per_epoch(options, data);
  const train::LrSchedule schedule(options.schedule, options.optimizer.lr, epoch_steps, options.epochs * epoch_steps);
  train::StepSettings steps = step_settings(options, data.norm, net, schedule.varies() ? &schedule : nullptr, group);
  bool stopped = options.resume && stops_early(options, state, place.out);  // it stopped early before
  for (int64_t epoch = state.point.completed_epochs + 1; !stopped && epoch <= options.epochs; ++epoch) {
    finish_epoch(run_epoch(epoch, options, data, net, steps, device, place), run, net, state, place);
    stopped = stops_early(options, state, place.out);
  }

  data.train_inputs = torch::Tensor();  // no longer needed: keeps the peak memory down
  load_best_weights(run, *net.evaluated(), place);
  RunResult result{state.history, state.point.best_epoch, {}, {}, run.dir};
  nlohmann::json metrics =
      place.main ? run_metrics(options, threads, data, net, state, device, place) : nlohmann::json();
  if (options.test) record_tests(run_test_sets(options, net, data, device, place), result, metrics);
  metrics["total_seconds"] = run_clock.seconds();
  if (place.main) write_outputs(options, run, net, data, state.history, device, metrics, place.out);
  return result;
}
}  // namespace convkit::run
