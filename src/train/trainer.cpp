#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <ostream>

#include "report/report.h"
#include "train/checkpoint.h"
#include "train/inference.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/progress.h"
#include "util/runtime.h"

namespace convkit::train {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// calculate_accuracy: argmax(1) == y, counted, as float32 / batch size.
torch::Tensor batch_accuracy(const torch::Tensor& logits, const torch::Tensor& y) {
  const torch::Tensor top = logits.argmax(1, /*keepdim=*/true);
  return top.eq(y.view_as(top)).sum().to(torch::kFloat) / y.size(0);
}

void print_epoch(std::ostream& out, const EpochRecord& r) {
  const int mins = static_cast<int>(r.seconds / 60);
  const int secs = static_cast<int>(r.seconds - mins * 60);
  out << strprintf("Epoch: %02lld | Epoch Time: %dm %ds\n", static_cast<long long>(r.epoch), mins, secs)
      << strprintf("\tTrain Loss: %.3f | Train Acc: %.2f%%\n", r.train.loss, r.train.acc * 100)
      << strprintf("\t Val. Loss: %.3f |  Val. Acc: %.2f%%\n", r.valid.loss, r.valid.acc * 100) << std::flush;
}

nlohmann::json history_json(const std::vector<EpochRecord>& history) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : history) {
    rows.push_back({{"epoch", r.epoch},
                    {"train_loss", r.train.loss},
                    {"train_acc", r.train.acc},
                    {"valid_loss", r.valid.loss},
                    {"valid_acc", r.valid.acc},
                    {"train_seconds", r.train_seconds},
                    {"seconds", r.seconds}});
  }
  return rows;
}

}  // namespace

void validate(const TrainOptions& o) {
  if (o.epochs <= 0) throw Error("--epochs must be a positive integer, got " + std::to_string(o.epochs));
  if (o.batch_size <= 0) throw Error("--batch-size must be a positive integer, got " + std::to_string(o.batch_size));
  if (!std::isfinite(o.lr) || o.lr <= 0) throw Error("--lr must be a positive number, got " + strprintf("%g", o.lr));
  if (o.threads < 0) throw Error("--threads must be 0 (all cores) or positive, got " + std::to_string(o.threads));
  if (!std::isfinite(o.rotation) || o.rotation < 0 || o.rotation > 180) {
    throw Error("--rotation must be between 0 and 180 degrees, got " + strprintf("%g", o.rotation));
  }
  if (o.limit < 0) throw Error("--limit must be 0 (all) or positive, got " + std::to_string(o.limit));
  if (o.limit > 0 && o.limit < 10) throw Error("--limit must keep at least 10 images, got " + std::to_string(o.limit));
  const auto& names = models::model_names();
  if (std::find(names.begin(), names.end(), o.model) == names.end()) models::make_model(o.model);  // throws
}

std::filesystem::path out_dir_for(const TrainOptions& o) {
  return o.out_dir.empty() ? std::filesystem::path("runs") / o.model : std::filesystem::path(o.out_dir);
}

EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& inputs,
                       const torch::Tensor& labels, const torch::Tensor& order, int64_t batch_size,
                       const torch::Device& device, bool progress) {
  model.train();
  const int64_t n = order.size(0);
  Progress bar("Training", n, progress);
  double loss_sum = 0, acc_sum = 0;
  int64_t batches = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const torch::Tensor idx = order.slice(0, start, std::min(n, start + batch_size));
    const torch::Tensor x = inputs.index_select(0, idx).to(device);
    const torch::Tensor y = labels.index_select(0, idx).to(device);
    optimizer.zero_grad();
    const torch::Tensor logits = model.forward(x).logits;
    const torch::Tensor loss = torch::nn::functional::cross_entropy(logits, y);
    const torch::Tensor acc = batch_accuracy(logits, y);
    loss.backward();
    optimizer.step();
    loss_sum += loss.item<float>();
    acc_sum += acc.item<float>();
    ++batches;
    bar.advance(idx.size(0));
  }
  return {loss_sum / batches, acc_sum / batches};
}

EpochStats evaluate(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                    int64_t batch_size, const torch::Device& device, bool progress) {
  model.eval();
  torch::NoGradGuard no_grad;
  const int64_t n = inputs.size(0);
  Progress bar("Evaluating", n, progress);
  double loss_sum = 0, acc_sum = 0;
  int64_t batches = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const int64_t end = std::min(n, start + batch_size);
    const torch::Tensor x = inputs.slice(0, start, end).to(device);
    const torch::Tensor y = labels.slice(0, start, end).to(device);
    const torch::Tensor logits = model.forward(x).logits;
    loss_sum += torch::nn::functional::cross_entropy(logits, y).item<float>();
    acc_sum += batch_accuracy(logits, y).item<float>();
    ++batches;
    bar.advance(end - start);
  }
  return {loss_sum / batches, acc_sum / batches};
}

void draw_loader_base_seed() { torch::empty({}, torch::kInt64).random_(); }

torch::Tensor random_sampler_order(int64_t n) {
  const int64_t seed = torch::empty({}, torch::kInt64).random_().item<int64_t>();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  return torch::randperm(n, generator, torch::kInt64);
}

TrainOptions read_run_options(const std::filesystem::path& run_dir) {
  const auto file = run_dir / "run.json";
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "missing: not a convkit run directory");
  try {
    const auto raw = read_file_bytes(file);
    const auto j = nlohmann::json::parse(raw.begin(), raw.end());
    TrainOptions o;
    o.model = j.at("model").get<std::string>();
    o.epochs = j.at("epochs").get<int64_t>();
    o.batch_size = j.at("batch_size").get<int64_t>();
    o.lr = j.at("lr").get<double>();
    o.seed = j.at("seed").get<uint64_t>();
    o.data_dir = j.at("data_dir").get<std::string>();
    o.rotation = j.at("rotation_degrees").get<double>();
    o.limit = j.at("limit").get<int64_t>();
    o.threads = j.at("threads").get<int>();
    o.out_dir = run_dir.string();
    o.resume = true;
    return o;
  } catch (const nlohmann::json::exception& e) {
    throw file_error(file.string(), std::string("invalid run settings: ") + e.what());
  }
}

namespace {

nlohmann::json run_settings_json(const TrainOptions& o, int threads) {
  return {{"model", o.model},   {"epochs", o.epochs},     {"batch_size", o.batch_size},
          {"lr", o.lr},         {"seed", o.seed},         {"data_dir", o.data_dir},
          {"limit", o.limit},   {"rotation_degrees", o.rotation}, {"threads", threads}};
}

// Everything needed to continue after a completed epoch: weights, Adam's moments and step
// counts, the global generator's state, and the best-so-far bookkeeping.
struct ResumePoint {
  int64_t completed_epochs = 0;
  double best_valid_loss = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0;
};

void save_resume_point(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       const ResumePoint& point) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model.save(model_archive);
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  {
    std::lock_guard<std::mutex> lock(generator.mutex());
    archive.write("rng_state", generator.get_state());
  }
  archive.write("completed_epochs", torch::tensor(point.completed_epochs));
  archive.write("best_valid_loss", torch::tensor(point.best_valid_loss, torch::kDouble));
  archive.write("best_epoch", torch::tensor(point.best_epoch));
  write_atomically_via(file, [&](const std::filesystem::path& tmp) { archive.save_to(tmp.string()); });
}

ResumePoint load_resume_point(const std::filesystem::path& file, torch::nn::Module& model,
                              torch::optim::Optimizer& optimizer) {
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "missing: the run has no completed epoch to resume from");
  try {
    torch::serialize::InputArchive archive, model_archive, optimizer_archive;
    archive.load_from(file.string());
    archive.read("model", model_archive);
    model.load(model_archive);
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::Tensor rng, epochs, best_loss, best_epoch;
    archive.read("rng_state", rng);
    archive.read("completed_epochs", epochs);
    archive.read("best_valid_loss", best_loss);
    archive.read("best_epoch", best_epoch);
    at::Generator generator = at::detail::getDefaultCPUGenerator();
    {
      std::lock_guard<std::mutex> lock(generator.mutex());
      generator.set_state(rng);
    }
    return {epochs.item<int64_t>(), best_loss.item<double>(), best_epoch.item<int64_t>()};
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw file_error(file.string(), "corrupt resume state (" + what.substr(0, what.find('\n')) + ")");
  }
}

std::vector<EpochRecord> read_history(const std::filesystem::path& file, int64_t epochs) {
  std::vector<EpochRecord> history;
  const auto raw = read_file_bytes(file);
  try {
    for (const auto& row : nlohmann::json::parse(raw.begin(), raw.end())) {
      if (static_cast<int64_t>(history.size()) == epochs) break;
      EpochRecord r;
      r.epoch = row.at("epoch").get<int64_t>();
      r.train = {row.at("train_loss").get<double>(), row.at("train_acc").get<double>()};
      r.valid = {row.at("valid_loss").get<double>(), row.at("valid_acc").get<double>()};
      r.train_seconds = row.at("train_seconds").get<double>();
      r.seconds = row.at("seconds").get<double>();
      history.push_back(r);
    }
  } catch (const nlohmann::json::exception& e) {
    throw file_error(file.string(), std::string("invalid history: ") + e.what());
  }
  if (static_cast<int64_t>(history.size()) != epochs) {
    throw file_error(file.string(), "has " + std::to_string(history.size()) + " epochs, resume state has " +
                                        std::to_string(epochs));
  }
  return history;
}

}  // namespace

RunResult run_training(const TrainOptions& options, std::ostream& out) {
  validate(options);
  const std::filesystem::path out_dir = out_dir_for(options);
  ensure_writable_dir(out_dir);  // before any work: a bad --out must not cost a training run
  const int threads = configure_threads(options.threads);
  const torch::Device device(resolve_device(options.device));
  const bool progress = !options.quiet;
  const auto run_start = Clock::now();

  // The order of everything that draws from the global generator below mirrors the tutorial.
  torch::manual_seed(options.seed);

  data::Mnist mnist = data::load_mnist(options.data_dir, options.limit);
  const data::Normalization norm = data::normalization_from(mnist.train.images);
  out << strprintf("Normalisation: mean %.4f, std %.4f (from %lld training images)\n", norm.mean, norm.std,
                   static_cast<long long>(mnist.train.images.size(0)));
  const torch::Tensor train_inputs = data::to_model_input(mnist.train.images, norm);

  const data::TrainValidIndices split = data::random_split(mnist.train.images.size(0));
  const torch::Tensor valid_inputs = train_inputs.index_select(0, split.valid);
  const torch::Tensor valid_labels = mnist.train.labels.index_select(0, split.valid);
  out << "Number of training examples: " << split.train.size(0) << "\n"
      << "Number of validation examples: " << split.valid.size(0) << "\n"
      << "Number of testing examples: " << mnist.test.images.size(0) << "\n";

  models::Classifier model = models::make_model(options.model, data::kNumClasses);
  model->to(device);
  out << strprintf("Model: %s (%lld parameters) | device %s | %d threads\n", options.model.c_str(),
                   static_cast<long long>(models::count_parameters(*model)), device.str().c_str(), threads)
      << std::flush;
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(options.lr));

  const std::filesystem::path checkpoint = out_dir / "model.pt";
  const std::filesystem::path resume_file = out_dir / "resume.pt";
  RunResult result;
  result.out_dir = out_dir;
  ResumePoint point;
  if (options.resume) {
    point = load_resume_point(resume_file, *model, optimizer);
    if (point.completed_epochs >= options.epochs) {
      throw Error("--resume: " + out_dir.string() + " already completed " + std::to_string(point.completed_epochs) +
                  " epochs; pass a larger --epochs to train further");
    }
    result.history = read_history(out_dir / "history.json", point.completed_epochs);
    result.best_epoch = point.best_epoch;
    out << "Resuming after epoch " << point.completed_epochs << " of " << options.epochs << "\n";
  } else {
    write_checkpoint_info(checkpoint, {options.model, data::kNumClasses, norm.mean, norm.std});
  }
  write_file_atomically(out_dir / "run.json", run_settings_json(options, threads).dump(2) + "\n");

  for (int64_t epoch = point.completed_epochs + 1; epoch <= options.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    draw_loader_base_seed();
    const torch::Tensor order = split.train.index_select(0, random_sampler_order(split.train.size(0)));
    EpochRecord record;
    record.epoch = epoch;
    record.train = train_epoch(*model, optimizer, train_inputs, mnist.train.labels, order, options.batch_size,
                               device, progress);
    record.train_seconds = seconds_since(epoch_start);
    draw_loader_base_seed();
    record.valid = evaluate(*model, valid_inputs, valid_labels, options.batch_size, device, progress);
    if (record.valid.loss < point.best_valid_loss) {
      point.best_valid_loss = record.valid.loss;
      point.best_epoch = result.best_epoch = epoch;
      save_state_dict(*model, checkpoint);
    }
    record.seconds = seconds_since(epoch_start);
    print_epoch(out, record);
    result.history.push_back(record);
    write_file_atomically(out_dir / "history.json", history_json(result.history).dump(2) + "\n");
    point.completed_epochs = epoch;
    save_resume_point(resume_file, *model, optimizer, point);
  }

  load_state_dict(*model, read_state_dict(checkpoint), checkpoint.string());
  const TestResults tests =
      evaluate_test_sets(*model, mnist.test, norm, options.rotation, options.batch_size, device, progress);
  result.test = tests.test;
  result.rotated_test = tests.rotated_test;
  out << strprintf("Test Loss: %.3f | Test Acc: %.2f%%\n", result.test.loss, result.test.acc * 100)
      << strprintf("Rotated Test Loss: %.3f | Rotated Test Acc: %.2f%%\n", result.rotated_test.loss,
                   result.rotated_test.acc * 100);

  nlohmann::json metrics = run_settings_json(options, threads);
  metrics.update({{"parameters", models::count_parameters(*model)},
                  {"best_epoch", result.best_epoch},
                  {"test_loss", result.test.loss},
                  {"test_acc", result.test.acc},
                  {"rotated_test_loss", result.rotated_test.loss},
                  {"rotated_test_acc", result.rotated_test.acc},
                  {"device", device.str()},
                  {"normalization", {{"mean", norm.mean}, {"std", norm.std}}},
                  {"examples", {{"train", split.train.size(0)}, {"valid", split.valid.size(0)}, {"test", mnist.test.images.size(0)}}},
                  {"total_seconds", seconds_since(run_start)}});
  if (options.report) {
    const auto report_start = Clock::now();
    const nlohmann::json history = history_json(result.history);
    report::write_figures(out_dir, *model, mnist, norm, device, history, metrics);
    report::write_html_report(out_dir, metrics, history);
    metrics["report_seconds"] = seconds_since(report_start);
  }
  write_file_atomically(out_dir / "metrics.json", metrics.dump(2) + "\n");
  out << "Outputs written to " << out_dir.string() << "/ (model.pt, history.json, metrics.json"
      << (options.report ? ", report.html, figures/" : "") << ")\n";
  return result;
}

}  // namespace convkit::train
