#include "train/trainer.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <nlohmann/json.hpp>
#include <ostream>

#include "report/report.h"
#include "train/checkpoint.h"
#include "train/inference.h"
#include "train/optimizer.h"
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

// calculate_accuracy: argmax(1) == y, counted, as float32 / batch size. On the CPU a plain
// loop (the first maximum wins, as in argmax) instead of five tensor ops per batch.
double batch_accuracy(const torch::Tensor& logits, const torch::Tensor& y) {
  int64_t correct = 0;
  if (logits.device().is_cpu() && logits.scalar_type() == torch::kFloat && y.scalar_type() == torch::kLong) {
    const torch::Tensor scores = logits.contiguous();
    const float* row = scores.data_ptr<float>();
    const int64_t classes = scores.size(1);
    const auto labels = y.accessor<int64_t, 1>();
    for (int64_t i = 0; i < scores.size(0); ++i, row += classes) {
      int64_t best = 0;
      for (int64_t c = 1; c < classes && !std::isnan(row[best]); ++c)
        if (row[c] > row[best] || std::isnan(row[c])) best = c;
      correct += best == labels[i];
    }
  } else {
    correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  return static_cast<float>(correct) / static_cast<float>(y.size(0));
}

// The global generator's state, read and written under its lock (not held while anything
// draws from it).
torch::Tensor global_generator_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_global_generator_state(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

using LossFn = std::function<torch::Tensor(const torch::Tensor& logits, const torch::Tensor& y)>;
// Images and labels of rows [lo, hi) of the current batch, on the training device.
using BatchRows = std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t lo, int64_t hi)>;

// Forward and backward of a batch of n images split into shards over the model and its
// replicas, one shard per thread; each shard gathers its own rows and clears its own gradient
// buffer. Each shard's loss gradient is its share of the batch, so the summed gradients are
// the whole batch's mean. Returns the batch's loss and accuracy. Without replicas this is the
// tutorial's plain step, to the bit (the share is 1.0). `sum_gradients`: add the replicas'
// gradients into the model's (else the optimiser reads them, see FusedAdam).
std::pair<double, double> sharded_forward_backward(models::ClassifierImpl& model, const BatchShards& shards, int64_t n,
                                                   const BatchRows& rows, const LossFn& loss_of, bool sum_gradients) {
  const int64_t count = std::min<int64_t>(static_cast<int64_t>(shards.replicas.size()) + 1, n);
  std::vector<double> loss(count), acc(count);
  at::parallel_for(0, count, 1, [&](int64_t begin, int64_t end) {
    for (int64_t s = begin; s < end; ++s) {
      const int64_t lo = n * s / count, hi = n * (s + 1) / count;
      const double share = static_cast<double>(hi - lo) / n;
      models::ClassifierImpl& net = s == 0 ? model : *shards.replicas[s - 1];
      if (shards.gradient.defined()) (s == 0 ? shards.gradient : shards.replica_gradients[s - 1]).zero_();
      const auto [x, y] = rows(lo, hi);
      const torch::Tensor logits = net.forward(x).logits;
      const torch::Tensor shard_loss = loss_of(logits, y);
      shard_loss.backward(torch::full({}, share, shard_loss.options()));
      loss[s] = shard_loss.item<double>() * share;
      acc[s] = batch_accuracy(logits, y) * share;
    }
  });
  // Replicas a short batch left idle hold the last step's gradients; an optimiser summing them
  // must find zeros.
  for (size_t s = count; s <= shards.replicas.size(); ++s) shards.replica_gradients[s - 1].zero_();
  if (count > 1 && sum_gradients) {
    // The model's gradient += each replica's, element by element in replica order (the same
    // sums at any thread count), split over the threads.
    float* sum = shards.gradient.data_ptr<float>();
    std::vector<const float*> parts;
    for (int64_t s = 1; s < count; ++s) parts.push_back(shards.replica_gradients[s - 1].data_ptr<float>());
    at::parallel_for(0, shards.gradient.numel(), 16384, [&](int64_t begin, int64_t end) {
      for (const float* part : parts)
        for (int64_t i = begin; i < end; ++i) sum[i] += part[i];
    });
  }
  double total_loss = 0, total_acc = 0;
  for (int64_t s = 0; s < count; ++s) total_loss += loss[s], total_acc += acc[s];
  return {total_loss, total_acc};
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
  models::check_model_name(o.model);
  auto one_of = [](const std::string& flag, const std::string& v, std::initializer_list<const char*> allowed) {
    std::string list;
    for (const char* a : allowed) {
      if (v == a) return;
      list += (list.empty() ? "" : ", ") + std::string(a);
    }
    throw Error(flag + ": unknown value '" + v + "' (use " + list + ")");
  };
  one_of("--optimizer", o.optimizer, {"adam", "adamw", "sgd", "rmsprop"});
  one_of("--schedule", o.schedule, {"none", "step", "cosine", "onecycle"});
  if (!(o.momentum >= 0 && o.momentum < 1)) throw Error("--momentum must be in [0, 1)");
  if (!(o.weight_decay >= 0 && std::isfinite(o.weight_decay))) throw Error("--weight-decay must be >= 0");
  if (o.step_size <= 0) throw Error("--step-size must be a positive number of epochs");
  if (!(o.gamma > 0 && o.gamma <= 1)) throw Error("--gamma must be in (0, 1]");
  if (!(o.label_smoothing >= 0 && o.label_smoothing < 1)) throw Error("--label-smoothing must be in [0, 1)");
  if (o.patience < 0) throw Error("--patience must be 0 (off) or positive");
  if (!(o.augmentation.rotate_degrees >= 0 && o.augmentation.rotate_degrees <= 180)) {
    throw Error("--aug-rotate must be between 0 and 180 degrees");
  }
  if (o.augmentation.translate < 0 || o.augmentation.translate > 14) throw Error("--aug-translate must be 0-14 pixels");
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tutorial", "competition", "rotation"};
  return names;
}

TrainOptions preset(const std::string& name) {
  TrainOptions o;
  if (name == "tutorial") return o;
  // A wider CNN with batch norm and dropout, AdamW with a one-cycle schedule, label smoothing,
  // and shifted/mirrored training images.
  o.model = "c32k3p1bn-mp2-c64k3p1bn-mp2-dr0.2-fc256bn-dr0.3";
  o.optimizer = "adamw";
  o.lr = 3e-3;
  o.weight_decay = 5e-4;
  o.schedule = "onecycle";
  o.batch_size = 128;
  o.epochs = 12;
  o.label_smoothing = 0.1;
  o.augmentation.translate = 1;
  o.augmentation.hflip = true;
  if (name == "competition") return o;
  if (name == "rotation") {
    o.augmentation.rotate_degrees = 25;
    return o;
  }
  std::string list;
  for (const auto& n : preset_names()) list += (list.empty() ? "" : ", ") + n;
  throw Error("--preset: unknown preset '" + name + "' (known: " + list + ")");
}

double scheduled_lr(const TrainOptions& o, int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
  const double t = total_steps > 1 ? static_cast<double>(step) / (total_steps - 1) : 1.0;
  if (o.schedule == "step") return o.lr * std::pow(o.gamma, static_cast<double>((step / steps_per_epoch) / o.step_size));
  if (o.schedule == "cosine") return o.lr * 0.5 * (1 + std::cos(M_PI * t));
  if (o.schedule == "onecycle") {
    // PyTorch's OneCycleLR defaults: 30% warm-up from lr/25, cosine annealing to lr/25/1e4.
    const double start = o.lr / 25, end = start / 1e4, warm = 0.3;
    auto cosine = [](double from, double to, double u) { return to + (from - to) * 0.5 * (1 + std::cos(M_PI * u)); };
    return t < warm ? cosine(start, o.lr, t / warm) : cosine(o.lr, end, (t - warm) / (1 - warm));
  }
  return o.lr;
}

std::filesystem::path out_dir_for(const TrainOptions& o) {
  return o.out_dir.empty() ? std::filesystem::path("runs") / o.model : std::filesystem::path(o.out_dir);
}

EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& inputs,
                       const torch::Tensor& labels, const torch::Tensor& order, int64_t batch_size,
                       const torch::Device& device, const StepSettings& settings, bool progress) {
  const auto loss_options = torch::nn::functional::CrossEntropyFuncOptions().label_smoothing(settings.label_smoothing);
  const LossFn loss_of = [&](const torch::Tensor& logits, const torch::Tensor& y) {
    return settings.label_smoothing > 0 ? torch::nn::functional::cross_entropy(logits, y, loss_options)
                                        : torch::nn::functional::cross_entropy(logits, y);
  };
  model.train();
  for (const auto& replica : settings.shards.replicas) replica->train();
  const int64_t n = order.size(0);
  // FusedAdam adds the shards' gradients in its own pass; for other optimisers they are summed
  // after the backward passes.
  auto* fused_adam = dynamic_cast<FusedAdam*>(&optimizer);
  const bool optimizer_sums =
      fused_adam && fused_adam->set_gradient_parts(settings.shards.gradient, settings.shards.replica_gradients);
  Progress bar("Training", n, progress);
  double loss_sum = 0, acc_sum = 0;
  int64_t batches = 0;
  for (int64_t start = 0; start < n; start += batch_size) {
    const torch::Tensor idx = order.slice(0, start, std::min(n, start + batch_size));
    // Augmentation draws random numbers for the whole batch, in order; without it each shard
    // gathers its own images.
    const torch::Tensor augmented =
        settings.augmentation.enabled()
            ? data::augment(data::gather_rows(inputs, idx), settings.augmentation, settings.background)
            : torch::Tensor();
    const BatchRows rows = [&](int64_t lo, int64_t hi) {
      const torch::Tensor part = idx.slice(0, lo, hi);
      const torch::Tensor x = augmented.defined() ? augmented.slice(0, lo, hi) : data::gather_rows(inputs, part);
      return std::make_pair(x.to(device), data::gather_rows(labels, part).to(device));
    };
    if (settings.before_step) settings.before_step(batches);
    if (!settings.shards.gradient.defined()) optimizer.zero_grad();  // else each shard clears its own
    const auto [loss, acc] = sharded_forward_backward(model, settings.shards, idx.size(0), rows, loss_of, !optimizer_sums);
    optimizer.step();
    loss_sum += loss;
    acc_sum += acc;
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
    acc_sum += batch_accuracy(logits, y);
    ++batches;
    bar.advance(end - start);
  }
  return {loss_sum / batches, acc_sum / batches};
}

namespace {

// One zeroed buffer as large as all of `params` together, and each parameter's slice of it as
// a view of the parameter's shape.
std::pair<torch::Tensor, std::vector<torch::Tensor>> flat_buffer(const std::vector<torch::Tensor>& params) {
  int64_t total = 0;
  for (const auto& p : params) total += p.numel();
  torch::Tensor buffer = torch::zeros({total}, params.at(0).options().requires_grad(false));
  std::vector<torch::Tensor> views;
  int64_t at = 0;
  for (const auto& p : params) {
    views.push_back(buffer.narrow(0, at, p.numel()).view(p.sizes()));
    at += p.numel();
  }
  return {buffer, views};
}

// Points every parameter's gradient into one zeroed buffer (backward then adds into it in
// place); returns the buffer.
torch::Tensor attach_flat_gradients(torch::nn::Module& model) {
  std::vector<torch::Tensor> params = model.parameters();
  auto [grads, views] = flat_buffer(params);
  for (size_t i = 0; i < params.size(); ++i) params[i].mutable_grad() = views[i];
  return grads;
}

}  // namespace

torch::Tensor flatten_parameters(torch::nn::Module& model) {
  std::vector<torch::Tensor> params = model.parameters();
  auto [values, views] = flat_buffer(params);
  for (size_t i = 0; i < params.size(); ++i) {
    views[i].copy_(params[i].detach());
    params[i].set_data(views[i]);
  }
  values.requires_grad_(true);
  values.mutable_grad() = attach_flat_gradients(model);
  return values;
}

BatchShards make_shards(const models::ClassifierImpl& model, const torch::Tensor& flat, const std::string& model_name,
                        int64_t num_classes, int64_t count) {
  if (count < 1 || model.exact() || !model.convolutions_fused()) return {};
  for (const auto& module : model.modules()) {
    const std::string kind = module->name();
    if (kind.find("BatchNorm") != std::string::npos || kind.find("Dropout") != std::string::npos) return {};
  }
  const torch::Tensor state = global_generator_state();
  const auto shared = model.named_parameters();
  BatchShards shards;
  shards.gradient = flat.grad();
  for (int64_t i = 0; i < count; ++i) {
    models::Classifier replica = models::make_model(model_name, num_classes);
    replica->set_exact(model.exact());
    for (auto& p : replica->named_parameters()) p.value().set_data(shared[p.key()]);
    shards.replica_gradients.push_back(attach_flat_gradients(*replica));
    shards.replicas.push_back(replica);
  }
  set_global_generator_state(state);
  return shards;
}

FastPath prepare_fast_path(models::ClassifierImpl& model, const std::string& model_name, int64_t num_classes,
                           int threads, const torch::Device& device) {
  if (model.exact() || !device.is_cpu()) return {model.parameters(), {}};
  const torch::Tensor flat = flatten_parameters(model);
  return {{flat}, make_shards(model, flat, model_name, num_classes, threads - 1)};
}

void draw_loader_base_seed() { torch::empty({}, torch::kInt64).random_(); }

torch::Tensor random_sampler_order(int64_t n) {
  const int64_t seed = torch::empty({}, torch::kInt64).random_().item<int64_t>();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  return torch::randperm(n, generator, torch::kInt64);
}

namespace {

// Every run setting once: its key in run.json and --config files, how it is read and how it
// is written back.
struct Setting {
  const char* key;
  std::function<void(TrainOptions&, const nlohmann::json&)> read;
  std::function<nlohmann::json(const TrainOptions&)> write;  // empty: not written to run.json
};

// A setting kept at field(options), of JSON type T.
template <typename T, typename Field>
Setting stored_at(const char* key, Field field) {
  return {key, [field](TrainOptions& o, const nlohmann::json& v) { field(o) = v.get<T>(); },
          [field](const TrainOptions& o) { return nlohmann::json(field(o)); }};
}

template <typename T>
Setting option(const char* key, T TrainOptions::*member) {
  return stored_at<T>(key, [member](auto& o) -> auto& { return o.*member; });
}

template <typename T>
Setting augmentation(const char* key, T data::Augmentation::*member) {
  return stored_at<T>(key, [member](auto& o) -> auto& { return o.augmentation.*member; });
}

const std::vector<Setting>& run_settings() {
  static const std::vector<Setting> settings = {
      option("model", &TrainOptions::model),
      option("epochs", &TrainOptions::epochs),
      option("batch_size", &TrainOptions::batch_size),
      option("lr", &TrainOptions::lr),
      option("seed", &TrainOptions::seed),
      option("data_dir", &TrainOptions::data_dir),
      option("limit", &TrainOptions::limit),
      option("rotation_degrees", &TrainOptions::rotation),
      option("threads", &TrainOptions::threads),  // written as the count the run used
      {"device", [](TrainOptions& o, const nlohmann::json& v) { o.device = v.get<std::string>(); }, {}},
      option("optimizer", &TrainOptions::optimizer),
      option("momentum", &TrainOptions::momentum),
      option("nesterov", &TrainOptions::nesterov),
      option("weight_decay", &TrainOptions::weight_decay),
      option("schedule", &TrainOptions::schedule),
      option("step_size", &TrainOptions::step_size),
      option("gamma", &TrainOptions::gamma),
      option("label_smoothing", &TrainOptions::label_smoothing),
      option("patience", &TrainOptions::patience),
      option("exact", &TrainOptions::exact),
      augmentation("aug_rotate", &data::Augmentation::rotate_degrees),
      augmentation("aug_translate", &data::Augmentation::translate),
      augmentation("aug_hflip", &data::Augmentation::hflip),
      option("test", &TrainOptions::test),
  };
  return settings;
}

}  // namespace

void apply_settings(TrainOptions& o, const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw file_error(source, "settings must be a JSON object");
  if (j.contains("preset")) {  // first, so the other keys override it
    if (!j["preset"].is_string()) throw file_error(source, "setting 'preset' must be a string");
    o = preset(j["preset"].get<std::string>());
  }
  for (const auto& [key, v] : j.items()) {
    if (key == "preset") continue;
    const std::string name = key == "rotation" ? "rotation_degrees" : key;  // the flag's name
    const auto& settings = run_settings();
    const auto it = std::find_if(settings.begin(), settings.end(), [&](const Setting& s) { return name == s.key; });
    if (it == settings.end()) throw file_error(source, "unknown setting '" + key + "'");
    try {
      it->read(o, v);
    } catch (const nlohmann::json::exception&) {
      throw file_error(source, "setting '" + key + "' has the wrong type (" + v.dump() + ")");
    }
  }
}

TrainOptions read_run_options(const std::filesystem::path& run_dir) {
  const auto file = run_dir / "run.json";
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "missing: not a convkit run directory");
  const auto raw = read_file_bytes(file);
  TrainOptions o;
  try {
    apply_settings(o, nlohmann::json::parse(raw.begin(), raw.end()), file.string());
  } catch (const nlohmann::json::parse_error& e) {
    throw file_error(file.string(), std::string("invalid JSON: ") + e.what());
  }
  o.out_dir = run_dir.string();
  o.resume = true;
  return o;
}

namespace {

nlohmann::json run_settings_json(const TrainOptions& o, int threads) {
  nlohmann::json j;
  for (const Setting& setting : run_settings())
    if (setting.write) j[setting.key] = setting.write(o);
  j["threads"] = threads;
  return j;
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
  archive.write("rng_state", global_generator_state());
  archive.write("completed_epochs", torch::tensor(point.completed_epochs));
  archive.write("best_valid_loss", torch::tensor(point.best_valid_loss, torch::kDouble));
  archive.write("best_epoch", torch::tensor(point.best_epoch));
  write_atomically_via(file, [&](const std::filesystem::path& tmp) { archive.save_to(tmp.string()); });
}

// Runs `read` on RUN_DIR/resume.pt; LibTorch's errors become one line naming the file.
template <class Read>
auto read_resume_archive(const std::filesystem::path& file, Read read) {
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "missing: the run has no completed epoch to resume from");
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(file.string());
    return read(archive);
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    throw file_error(file.string(), "corrupt resume state (" + what.substr(0, what.find('\n')) + ")");
  }
}

// The resume point's weights. Module::load gives each parameter new storage, so this comes
// before flatten_parameters ties the parameters to the optimiser's flat buffer.
void load_resume_weights(const std::filesystem::path& file, torch::nn::Module& model) {
  read_resume_archive(file, [&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model.load(model_archive);
  });
}

// The rest of the resume point: the optimiser's state, the generator, the bookkeeping.
ResumePoint load_resume_point(const std::filesystem::path& file, torch::optim::Optimizer& optimizer) {
  return read_resume_archive(file, [&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::Tensor rng, epochs, best_loss, best_epoch;
    archive.read("rng_state", rng);
    archive.read("completed_epochs", epochs);
    archive.read("best_valid_loss", best_loss);
    archive.read("best_epoch", best_epoch);
    set_global_generator_state(rng);
    return ResumePoint{epochs.item<int64_t>(), best_loss.item<double>(), best_epoch.item<int64_t>()};
  });
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
  torch::Tensor train_inputs = data::to_model_input(mnist.train.images, norm);

  const data::TrainValidIndices split = data::random_split(mnist.train.images.size(0));
  const torch::Tensor valid_inputs = train_inputs.index_select(0, split.valid);
  const torch::Tensor valid_labels = mnist.train.labels.index_select(0, split.valid);
  out << "Number of training examples: " << split.train.size(0) << "\n"
      << "Number of validation examples: " << split.valid.size(0) << "\n"
      << "Number of testing examples: " << mnist.test.images.size(0) << "\n";

  models::Classifier model = models::make_model(options.model, data::kNumClasses);
  model->set_exact(options.exact);
  model->to(device);
  const std::filesystem::path checkpoint = out_dir / "model.pt";
  const std::filesystem::path resume_file = out_dir / "resume.pt";
  if (options.resume) load_resume_weights(resume_file, *model);
  out << strprintf("Model: %s (%lld parameters) | device %s | %d threads | %s kernels\n", options.model.c_str(),
                   static_cast<long long>(models::count_parameters(*model)), device.str().c_str(), threads,
                   options.exact ? "exact" : "fused")
      << std::flush;
  // Exact mode keeps the tutorial's per-parameter updates (and its resume.pt layout).
  const FastPath fast = prepare_fast_path(*model, options.model, data::kNumClasses, threads, device);
  const std::unique_ptr<torch::optim::Optimizer> optimizer_ptr = make_optimizer(options, fast.parameters);
  torch::optim::Optimizer& optimizer = *optimizer_ptr;
  const int64_t steps_per_epoch = (split.train.size(0) + options.batch_size - 1) / options.batch_size;
  StepSettings step_settings;
  step_settings.label_smoothing = options.label_smoothing;
  step_settings.augmentation = options.augmentation;
  step_settings.background = (0.f - norm.mean) / norm.std;

  RunResult result;
  result.out_dir = out_dir;
  ResumePoint point;
  if (options.resume) {
    point = load_resume_point(resume_file, optimizer);
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

  step_settings.shards = fast.shards;
  for (int64_t epoch = point.completed_epochs + 1; epoch <= options.epochs; ++epoch) {
    const auto epoch_start = Clock::now();
    draw_loader_base_seed();
    const torch::Tensor order = split.train.index_select(0, random_sampler_order(split.train.size(0)));
    EpochRecord record;
    record.epoch = epoch;
    if (options.schedule != "none") {
      step_settings.before_step = [&, epoch](int64_t batch) {
        const double lr = scheduled_lr(options, (epoch - 1) * steps_per_epoch + batch, steps_per_epoch,
                                       options.epochs * steps_per_epoch);
        for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
      };
    }
    record.train = train_epoch(*model, optimizer, train_inputs, mnist.train.labels, order, options.batch_size,
                               device, step_settings, progress);
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
    if (options.patience > 0 && epoch - point.best_epoch >= options.patience) {
      out << "Early stopping after epoch " << epoch << ": no better validation loss in " << options.patience
          << " epochs\n";
      break;
    }
  }

  train_inputs = torch::Tensor();  // 188 MB no longer needed: keeps the peak memory down
  load_state_dict(*model, read_state_dict(checkpoint), checkpoint.string());
  const EpochRecord& best = result.history.at(result.best_epoch - 1);
  nlohmann::json metrics = run_settings_json(options, threads);
  metrics.update({{"parameters", models::count_parameters(*model)},
                  {"epochs_run", static_cast<int64_t>(result.history.size())},
                  {"best_epoch", result.best_epoch},
                  {"best_valid_loss", best.valid.loss},
                  {"best_valid_acc", best.valid.acc},
                  {"device", device.str()},
                  {"normalization", {{"mean", norm.mean}, {"std", norm.std}}},
                  {"examples", {{"train", split.train.size(0)}, {"valid", split.valid.size(0)}, {"test", mnist.test.images.size(0)}}}});
  if (options.test) {
    const TestResults tests =
        evaluate_test_sets(*model, mnist.test, norm, options.rotation, options.batch_size, device, progress);
    result.test = tests.test;
    result.rotated_test = tests.rotated_test;
    out << test_lines(tests);
    metrics.update({{"test_loss", result.test.loss},
                    {"test_acc", result.test.acc},
                    {"rotated_test_loss", result.rotated_test.loss},
                    {"rotated_test_acc", result.rotated_test.acc}});
  }
  metrics["total_seconds"] = seconds_since(run_start);
  if (options.report && options.test) {
    const auto report_start = Clock::now();
    const nlohmann::json history = history_json(result.history);
    report::write_figures(out_dir, *model, mnist, norm, device, history, metrics);
    report::write_html_report(out_dir, metrics, history);
    metrics["report_seconds"] = seconds_since(report_start);
  }
  write_file_atomically(out_dir / "metrics.json", metrics.dump(2) + "\n");
  out << "Outputs written to " << out_dir.string() << "/ (model.pt, history.json, metrics.json"
      << (options.report && options.test ? ", report.html, figures/" : "") << ")\n";
  return result;
}

}  // namespace convkit::train
