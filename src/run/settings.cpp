#include "run/settings.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>

#include "models/registry.h"
#include "models/test_time_augmentation.h"
#include "run/presets.h"
#include "run/run_dir.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::run {
namespace {

using json = nlohmann::json;

std::string one_of(const std::string& value, const std::vector<std::string>& allowed) {
  return std::find(allowed.begin(), allowed.end(), value) != allowed.end() ? "" : "must be one of " + join(allowed);
}

std::string in_unit_interval(double v) { return v >= 0 && v < 1 ? "" : "must be in [0, 1)"; }

// Beta(alpha, alpha) draws: 0 is off; past 100 every draw is 1/2 to many digits.
std::string alpha_problem(double alpha) { return alpha >= 0 && alpha <= 100 ? "" : "must be from 0 (off) to 100"; }

// Counts a typo could make absurd are refused before anything runs.
constexpr int64_t kMaxEpochs = 100000;
constexpr int64_t kMaxBatchSize = int64_t{1} << 20;
constexpr int kMaxThreads = 1024;

std::string count_in(int64_t v, int64_t lo, int64_t hi, const char* what) {
  return v >= lo && v <= hi
             ? ""
             : strprintf("must be %s from %lld to %lld", what, static_cast<long long>(lo), static_cast<long long>(hi));
}

const std::vector<Setting>& all_settings() {
  static const std::
      vector<Setting>
          table =
              {
                  {"model", "--model",
                   "Network: " + join(models::model_names(), "|") + ", or a spec such as c32k3p1bn-mp2-fc128-dr0.5",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.model; }),
                   [](const TrainOptions& o) {
                     models::check_model_name(o.model);  // throws the error that names the bad token
                     return std::string();
                   }},
                  {"epochs", "--epochs", "Training epochs (with --resume: the new total)",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.epochs; }),
                   [](const TrainOptions& o) { return count_in(o.epochs, 1, kMaxEpochs, "an integer"); }},
                  {"batch_size", "--batch-size", "Images per batch",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.batch_size; }),
                   [](const TrainOptions& o) { return count_in(o.batch_size, 1, kMaxBatchSize, "an integer"); }},
                  {"lr", "--lr", "Learning rate (the peak, with a schedule)",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.optimizer.lr; }),
                   [](const TrainOptions& o) {
                     return std::string(
                         std::isfinite(o.optimizer.lr) && o.optimizer.lr > 0 ? "" : "must be a positive number");
                   }},
                  {"seed", "--seed", "Seed of the global random generator",
                   FieldOf<uint64_t>([](TrainOptions& o) -> uint64_t& { return o.seed; })},
                  {"data_dir", "--data",
                   "Directory with IDX files (raw or .gz), image folders (train/<class>/, test/<class>/) or "
                   "CIFAR-10/100 "
                   "binary files",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.data_dir; })},
                  {"dataset", "--dataset",
                   "The dataset's format: idx|folder|cifar (default: told by what --data holds)",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.dataset; }),
                   [](const TrainOptions& o) {
                     return o.dataset.empty() ? std::string() : one_of(o.dataset, {"idx", "folder", "cifar"});
                   }},
                  {"channels", "--channels",
                   "Convert the images to 1 (grey) or 3 (RGB) channels (0: as the data has them)",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.channels; }),
                   [](const TrainOptions& o) {
                     return std::string(o.channels == 0 || o.channels == 1 || o.channels == 3 ? ""
                                                                                              : "must be 0, 1 or 3");
                   }},
                  {"image_size", "--image-size",
                   "Resize the images to HxW, e.g. 32x32 (default: their own size, which image folders must share)",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.image_size; }),
                   [](const TrainOptions& o) {
                     if (!o.image_size.empty())
                       data::parse_image_size(o.image_size, "--image-size");  // throws naming the flag
                     return std::string();
                   }},
                  {"skip_bad", "--skip-bad", "Image folders: skip files that cannot be decoded (and say how many)",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.skip_bad; })},
                  {"label", "--label", "CIFAR-100's labels: fine (100 classes) or coarse (20 superclasses)",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.label; }),
                   [](const TrainOptions& o) {
                     return one_of(o.label, {"fine", "coarse"});
                   }},
                  {"max_memory", "--max-memory",
                   "MiB the images may take in memory, as pixels and model input; more is refused before decoding (0: "
                   "half the "
                   "machine's)",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.max_memory; }),
                   [](const TrainOptions& o) {
                     return count_in(o.max_memory, 0, int64_t{1} << 30, "a number of MiB");
                   }},
                  {"test_split", "--test-split",
                   "One image-folder tree (DIR/<class>/...): the share of each class kept for the test, by a fixed "
                   "seed",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.test_split; }),
                   [](const TrainOptions& o) {
                     return std::string(o.test_split > 0 && o.test_split < 1 ? "" : "must be between 0 and 1");
                   }},
                  {"limit", "--limit", "Use only the first N training and test images (0: all)",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.limit; }),
                   [](const TrainOptions& o) {
                     return std::string(o.limit < 0                   ? "must be 0 (all) or positive"
                                        : o.limit > 0 && o.limit < 10 ? "must keep at least 10 images"
                                                                      : "");
                   }},
                  {"rotation_degrees", "--rotation", "Max angle (degrees) of the rotated test set",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.rotation; }),
                   [](const TrainOptions& o) {
                     return std::string(o.rotation >= 0 && o.rotation <= 180 ? ""
                                                                             : "must be between 0 and 180 degrees");
                   }},
                  {"threads", "--threads", "Compute threads (0: all cores)",
                   FieldOf<int>([](TrainOptions& o) -> int& { return o.threads; }),
                   [](const TrainOptions& o) {
                     return count_in(o.threads, 0, kMaxThreads, "0 (all cores) or a count");
                   }},
                  {"world_size", nullptr,
                   "Processes the run trained on (recorded; `--nproc` or torchrun's WORLD_SIZE sets it)",
                   FieldOf<int>([](TrainOptions& o) -> int& { return o.world_size; }),
                   [](const TrainOptions& o) { return count_in(o.world_size, 1, 65536, "a count"); }},
                  {"device", "--device", "auto|cpu|cuda",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.device; }), nullptr,
                   /*recorded=*/false},
                  {"optimizer", "--optimizer", join(train::optimizer_names(), "|"),
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.optimizer.name; }),
                   [](const TrainOptions& o) { return one_of(o.optimizer.name, train::optimizer_names()); }},
                  {"momentum", "--momentum", "Momentum of sgd and rmsprop",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.optimizer.momentum; }),
                   [](const TrainOptions& o) { return in_unit_interval(o.optimizer.momentum); }},
                  {"nesterov", "--nesterov", "sgd: Nesterov momentum",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.optimizer.nesterov; })},
                  {"weight_decay", "--weight-decay", "Weight decay (decoupled for adamw and sgdw)",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.optimizer.weight_decay; }),
                   [](const TrainOptions& o) {
                     const double w = o.optimizer.weight_decay;
                     return std::string(w >= 0 && std::isfinite(w) ? "" : "must be >= 0");
                   }},
                  {"no_decay_norms", "--no-decay-norms",
                   "Weight decay on convolution and dense weights only, not on biases "
                   "or batch norm",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.optimizer.no_decay_on_norms; })},
                  {"schedule", "--schedule", "Learning-rate schedule: " + join(train::schedule_names(), "|"),
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.schedule.name; }),
                   [](const TrainOptions& o) { return one_of(o.schedule.name, train::schedule_names()); }},
                  {"step_size", "--step-size", "step schedule: epochs between decays",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.schedule.step_size; }),
                   [](const TrainOptions& o) {
                     return std::string(o.schedule.step_size > 0 ? "" : "must be a positive number of epochs");
                   }},
                  {"gamma", "--gamma", "step schedule: decay factor",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.schedule.gamma; }),
                   [](const TrainOptions& o) {
                     return std::string(o.schedule.gamma > 0 && o.schedule.gamma <= 1 ? "" : "must be in (0, 1]");
                   }},
                  {"warmup", "--warmup",
                   "Epochs (may be fractional) of linear learning-rate warm-up from 0, on any schedule",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.schedule.warmup_epochs; }),
                   [](const TrainOptions& o) {
                     const double w = o.schedule.warmup_epochs;
                     return std::string(w >= 0 && w <= kMaxEpochs ? "" : "must be a number of epochs >= 0");
                   }},
                  {"ema", "--ema",
                   "Decay of an exponential moving average of the weights (e.g. 0.999), which is validated, kept as "
                   "model.pt "
                   "and tested in the network's place (0: off)",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.ema; }),
                   [](const TrainOptions& o) { return in_unit_interval(o.ema); }},
                  {"tta", "--tta",
                   "Test-time augmentation of the test sets: none|flip|shift|flip,shift (the mirror image, 1-pixel "
                   "shifts; "
                   "eval and predict take the run's)",
                   FieldOf<std::string>([](TrainOptions& o) -> std::string& { return o.tta; }),
                   [](const TrainOptions& o) {
                     models::parse_tta(o.tta);  // throws the error that names the flag
                     return std::string();
                   }},
                  {"bn_momentum", "--bn-momentum", "Momentum of batch norm's running statistics",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.bn_momentum; }),
                   [](const TrainOptions& o) {
                     return std::string(o.bn_momentum > 0 && o.bn_momentum <= 1 ? "" : "must be in (0, 1]");
                   }},
                  {"mixup", "--mixup",
                   "Mixup: blend each batch with a shuffled copy, shares drawn from Beta(ALPHA, ALPHA) (0: off)",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.mixing.mixup_alpha; }),
                   [](const TrainOptions& o) { return alpha_problem(o.mixing.mixup_alpha); }},
                  {"cutmix", "--cutmix",
                   "CutMix: paste a box of a shuffled copy into each batch, its area drawn from Beta(ALPHA, ALPHA) (0: "
                   "off; with "
                   "--mixup, each batch one or the other)",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.mixing.cutmix_alpha; }),
                   [](const TrainOptions& o) { return alpha_problem(o.mixing.cutmix_alpha); }},
                  {"label_smoothing", "--label-smoothing", "Label smoothing of the training loss",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.label_smoothing; }),
                   [](const TrainOptions& o) { return in_unit_interval(o.label_smoothing); }},
                  {"patience", "--patience", "Stop after this many epochs without a better validation loss (0: off)",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.patience; }),
                   [](const TrainOptions&
                          o) { return count_in(o.patience, 0, kMaxEpochs, "0 (off) or a number of epochs"); }},
                  {"exact", "--exact", "LibTorch's kernels only: numbers bit-identical to the Python tutorial (slower)",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.exact; })},
                  {"aug_rotate", "--aug-rotate", "Augment: rotate training images by up to +-DEG",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.augmentation.rotate_degrees; }),
                   [](const TrainOptions& o) {
                     const double d = o.augmentation.rotate_degrees;
                     return std::string(d >= 0 && d <= 180 ? "" : "must be between 0 and 180 degrees");
                   }},
                  {"aug_translate", "--aug-translate", "Augment: shift training images by up to N pixels",
                   FieldOf<int64_t>([](TrainOptions& o) -> int64_t& { return o.augmentation.translate; }),
                   [](const TrainOptions& o) {
                     const int64_t t = o.augmentation.translate;
                     return std::string(t >= 0 && t <= data::kImageSize / 2 ? "" : "must be 0-14 pixels");
                   }},
                  {"aug_hflip", "--aug-hflip", "Augment: mirror half the training images",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.augmentation.hflip; })},
                  {"aug_erase", "--aug-erase", "Augment: erase a random box of each training image with probability P",
                   FieldOf<double>([](TrainOptions& o) -> double& { return o.augmentation.erase; }),
                   [](const TrainOptions& o) {
                     return std::string(o.augmentation.erase >= 0 && o.augmentation.erase <= 1 ? ""
                                                                                               : "must be in [0, 1]");
                   }},
                  {"test", nullptr, "Evaluate the test sets after training",
                   FieldOf<bool>([](TrainOptions& o) -> bool& { return o.test; })},
              };
  return table;
}

json value_json(const Setting& s, const TrainOptions& o) {
  return std::visit([&](auto field) { return json(field(const_cast<TrainOptions&>(o))); }, s.field);
}

// `v` as a T, or an empty optional when it is not one: no truncation of 1.5 to an integer, no
// wrap-around of a negative or oversized number.
template <class T>
std::optional<T> exactly(const json& v) {
  if constexpr (std::is_same_v<T, bool>) {
    if (v.is_boolean()) return v.get<bool>();
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (v.is_string()) return v.get<std::string>();
  } else if constexpr (std::is_floating_point_v<T>) {
    if (v.is_number()) return v.get<T>();
  } else {
    if (v.is_number_unsigned()) {
      const uint64_t u = v.get<uint64_t>();
      if (u <= static_cast<uint64_t>(std::numeric_limits<T>::max())) return static_cast<T>(u);
    } else if (v.is_number_integer()) {
      const int64_t i = v.get<int64_t>();
      if (i >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
          (i >= 0 || std::is_signed_v<T>)&&(i < 0 || static_cast<uint64_t>(i) <=
                                                         static_cast<uint64_t>(std::numeric_limits<T>::max())))
        return static_cast<T>(i);
    }
  }
  return std::nullopt;
}

void read_setting(const Setting& s, TrainOptions& o, const json& v, const std::string& source) {
  std::visit(
      [&](auto field) {
        using T = std::decay_t<decltype(field(o))>;
        const std::optional<T> value = exactly<T>(v);
        if (!value)
          throw file_error(source,
                           "setting '" + std::string(s.key) + "' has the wrong type or range (" + v.dump() + ")");
        field(o) = *value;
      },
      s.field);
}

// `text` as a T, or an empty optional when it is not one to the last character: no "1.5"
// for an integer, no wrap-around of "-1" or of a number too large for T.
template <class T>
std::optional<T> parse_exactly(const std::string& text) {
  const char* end = text.data() + text.size();
  if constexpr (std::is_same_v<T, std::string>) {
    return text;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (text == "true" || text == "1") return true;
    if (text == "false" || text == "0") return false;
  } else if constexpr (std::is_floating_point_v<T>) {
    char* stop = nullptr;
    errno = 0;
    const double v = std::strtod(text.c_str(), &stop);
    if (!text.empty() && stop == end && errno != ERANGE) return static_cast<T>(v);
  } else {
    T v{};
    const auto [stop, ec] = std::from_chars(text.data(), end, v);
    if (!text.empty() && ec == std::errc() && stop == end) return v;
  }
  return std::nullopt;
}

}  // namespace

void set_from_text(const Setting& s, TrainOptions& o, const std::string& text) {
  std::visit(
      [&](auto field) {
        using T = std::decay_t<decltype(field(o))>;
        const std::optional<T> value = parse_exactly<T>(text);
        const char* kind = std::is_floating_point_v<T> ? "a number"
                           : std::is_integral_v<T>     ? "an integer in range"
                                                       : "valid";
        if (!value) throw Error(s.name() + ": '" + text + "' is not " + kind);
        field(o) = *value;
      },
      s.field);
}

std::string text_of(const Setting& s, const TrainOptions& o) {
  const json v = value_json(s, o);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

const std::vector<Setting>& settings() { return all_settings(); }

void copy_setting(const Setting& s, const TrainOptions& from, TrainOptions& to) {
  std::visit([&](auto field) { field(to) = field(const_cast<TrainOptions&>(from)); }, s.field);
}

void validate(const TrainOptions& o, const std::string& source) {
  try {
    for (const Setting& s : settings()) {
      if (!s.problem) continue;
      const std::string problem = s.problem(o);
      if (!problem.empty()) throw Error(s.name() + " " + problem + ", got " + value_json(s, o).dump());
    }
  } catch (const Error& e) {
    if (source.empty()) throw;
    throw file_error(source, e.what());
  }
}

void apply_settings(TrainOptions& o, const json& j, const std::string& source) {
  if (!j.is_object()) throw file_error(source, "settings must be a JSON object");
  if (j.contains("preset")) {  // first, so the other keys override it
    if (!j["preset"].is_string()) throw file_error(source, "setting 'preset' must be a string");
    o = preset(j["preset"].get<std::string>());
  }
  for (const auto& [key, v] : j.items()) {
    if (key == "preset") continue;
    const std::string name = key == "rotation" ? "rotation_degrees" : key;  // the flag's name
    const auto it = std::find_if(settings().begin(), settings().end(), [&](const Setting& s) { return name == s.key; });
    if (it == settings().end()) throw file_error(source, "unknown setting '" + key + "'");
    read_setting(*it, o, v, source);
  }
}

json settings_json(const TrainOptions& o, int threads) {
  json j;
  for (const Setting& s : settings())
    if (s.recorded) j[s.key] = value_json(s, o);
  j["threads"] = threads;
  return j;
}

TrainOptions read_run_options(const std::filesystem::path& run_dir) {
  const auto file = RunDir{run_dir}.settings();
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "missing: not a convkit run directory");
  TrainOptions o;
  apply_settings(o, read_json_file(file), file.string());
  o.out_dir = run_dir.string();
  o.resume = true;
  return o;
}

}  // namespace convkit::run
