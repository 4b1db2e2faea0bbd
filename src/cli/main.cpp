// convkit: train, evaluate and explain convolutional image classifiers (LibTorch).
// Each subcommand parses its flags here and calls the library; every error ends in main() as
// one line on stderr and a non-zero exit code.
#include <CLI/CLI.hpp>

#include <iostream>
#include <nlohmann/json.hpp>

#include "data/image.h"
#include "models/models.h"
#include "report/report.h"
#include "train/inference.h"
#include "train/sweep.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/runtime.h"

namespace {

using namespace convkit;

std::string joined_model_names() {
  std::string names;
  for (const auto& n : models::model_names()) names += (names.empty() ? "" : "|") + n;
  return names;
}

void add_train_command(CLI::App& app) {
  static train::TrainOptions o;
  static std::string resume_dir, preset_name, config_file;
  // Each option with the field it sets, so a --preset can be overridden flag by flag.
  static std::vector<std::pair<CLI::Option*, std::function<void(train::TrainOptions&)>>> fields;
  CLI::App* cmd = app.add_subcommand("train", "Train a network on FashionMNIST the tutorial's way");
  auto field = [cmd](const std::string& flag, auto& member, const std::string& help,
                     std::function<void(train::TrainOptions&)> copy) {
    CLI::Option* opt = cmd->add_option(flag, member, help)->capture_default_str();
    fields.emplace_back(opt, std::move(copy));
    return opt;
  };
#define CONVKIT_FIELD(flag, member, help) field(flag, o.member, help, [](train::TrainOptions& t) { t.member = o.member; })
  CONVKIT_FIELD("--model", model, "Network: " + joined_model_names() + ", or a spec such as c32k3p1bn-mp2-fc128-dr0.5");
  CONVKIT_FIELD("--epochs", epochs, "Training epochs (with --resume: the new total)");
  CONVKIT_FIELD("--batch-size", batch_size, "Images per batch");
  CONVKIT_FIELD("--lr", lr, "Learning rate (the peak, with a schedule)");
  CONVKIT_FIELD("--seed", seed, "Seed of the global random generator");
  CONVKIT_FIELD("--data", data_dir, "Directory with the IDX files (raw or .gz)");
  CONVKIT_FIELD("--out", out_dir, "Run directory for outputs (default: runs/<model>)");
  CONVKIT_FIELD("--threads", threads, "Compute threads (0: all cores)");
  CONVKIT_FIELD("--device", device, "auto|cpu|cuda");
  CONVKIT_FIELD("--rotation", rotation, "Max angle (degrees) of the rotated test set");
  CONVKIT_FIELD("--limit", limit, "Use only the first N training and test images (0: all)");
  CONVKIT_FIELD("--optimizer", optimizer, "adam|adamw|sgd|rmsprop");
  CONVKIT_FIELD("--momentum", momentum, "Momentum of sgd and rmsprop");
  CONVKIT_FIELD("--weight-decay", weight_decay, "Weight decay (decoupled for adamw)");
  CONVKIT_FIELD("--schedule", schedule, "Learning-rate schedule: none|step|cosine|onecycle");
  CONVKIT_FIELD("--step-size", step_size, "step schedule: epochs between decays");
  CONVKIT_FIELD("--gamma", gamma, "step schedule: decay factor");
  CONVKIT_FIELD("--label-smoothing", label_smoothing, "Label smoothing of the training loss");
  CONVKIT_FIELD("--patience", patience, "Stop after this many epochs without a better validation loss (0: off)");
  CONVKIT_FIELD("--aug-rotate", augmentation.rotate_degrees, "Augment: rotate training images by up to +-DEG");
  CONVKIT_FIELD("--aug-translate", augmentation.translate, "Augment: shift training images by up to N pixels");
#undef CONVKIT_FIELD
  fields.emplace_back(cmd->add_flag("--nesterov", o.nesterov, "sgd: Nesterov momentum"),
                      [](train::TrainOptions& t) { t.nesterov = o.nesterov; });
  fields.emplace_back(cmd->add_flag("--exact", o.exact,
                                    "LibTorch's kernels only: numbers bit-identical to the Python tutorial (slower)"),
                      [](train::TrainOptions& t) { t.exact = o.exact; });
  fields.emplace_back(cmd->add_flag("--aug-hflip", o.augmentation.hflip, "Augment: mirror half the training images"),
                      [](train::TrainOptions& t) { t.augmentation.hflip = o.augmentation.hflip; });
  std::string presets;
  for (const auto& n : train::preset_names()) presets += (presets.empty() ? "" : "|") + n;
  cmd->add_option("--preset", preset_name, "A network with its training options: " + presets + " (flags override it)");
  cmd->add_option("--config", config_file,
                  "JSON file of settings (the keys of run.json, e.g. {\"model\": \"lenet-bn\", \"lr\": 0.002}); flags override it");
  cmd->add_option("--resume", resume_dir,
                  "Continue the run in this directory from its last completed epoch, with its settings");
  cmd->add_flag("--quiet", o.quiet, "No progress bars");
  cmd->add_flag("--no-report", [](int64_t) { o.report = false; }, "Skip figures/ and report.html");
  cmd->callback([cmd] {
    train::TrainOptions options = o;
    if (!preset_name.empty() || !config_file.empty()) {
      options = preset_name.empty() ? train::TrainOptions{} : train::preset(preset_name);
      if (!config_file.empty()) {
        const auto raw = read_file_bytes(config_file);
        const auto j = nlohmann::json::parse(raw.begin(), raw.end(), nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) throw file_error(config_file, "invalid JSON");
        train::apply_settings(options, j, config_file);
      }
      for (auto& [opt, copy] : fields)
        if (opt->count()) copy(options);
      options.quiet = o.quiet;
      options.report = o.report;
    }
    if (!resume_dir.empty()) {
      for (auto& [opt, copy] : fields) {
        const std::string flag = opt->get_name();
        if (opt->count() && flag != "--epochs" && flag != "--threads" && flag != "--device") {
          throw Error(flag + ": cannot be changed on --resume (the run's settings are kept)");
        }
      }
      if (!preset_name.empty() || !config_file.empty()) {
        throw Error("--resume: takes the run's own settings; drop --preset/--config");
      }
      options = train::read_run_options(resume_dir);
      if (cmd->get_option("--epochs")->count()) options.epochs = o.epochs;
      if (cmd->get_option("--threads")->count()) options.threads = o.threads;
      options.device = o.device;
      options.quiet = o.quiet;
      options.report = o.report;
    }
    train::run_training(options, std::cout);
  });
}

void add_eval_command(CLI::App& app) {
  static std::string checkpoint, model, data_dir = data::kDefaultDataDir, device = "auto";
  static double rotation = 25;
  static int64_t batch_size = 64, limit = 0;
  static uint64_t seed = 1234;
  static int threads = 0;
  static bool json = false, exact = false;
  CLI::App* cmd = app.add_subcommand("eval", "Test and rotated-test loss/accuracy of a checkpoint");
  cmd->add_option("--checkpoint", checkpoint, "state_dict file (convkit's or Python's torch.save)")->required();
  cmd->add_option("--model", model, "Architecture, when no model.json is beside the checkpoint: " + joined_model_names());
  cmd->add_option("--data", data_dir, "Directory with the IDX files")->capture_default_str();
  cmd->add_option("--rotation", rotation, "Max angle (degrees) of the rotated test set")->capture_default_str();
  cmd->add_option("--batch-size", batch_size, "Images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", seed, "Seed for the rotation angles")->capture_default_str();
  cmd->add_option("--limit", limit, "Use only the first N test images (0: all)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", threads, "Compute threads (0: all cores)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--device", device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_flag("--json", json, "Print one JSON object instead of the tutorial's lines");
  cmd->add_flag("--exact", exact, "LibTorch's kernels only (bit-identical to Python)");
  cmd->callback([] {
    if (!(rotation >= 0 && rotation <= 180)) throw Error("--rotation must be between 0 and 180 degrees");
    configure_threads(threads);
    const torch::Device dev(resolve_device(device));
    auto loaded = train::load_model(checkpoint, model, data_dir);
    loaded.model->set_exact(exact);
    loaded.model->to(dev);
    const data::Split test = data::load_split(data_dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", limit);
    torch::manual_seed(seed);
    const data::Normalization norm{loaded.info.mean, loaded.info.std};
    const auto r = train::evaluate_test_sets(*loaded.model, test, norm, rotation, batch_size, dev, !json);
    if (json) {
      std::cout << nlohmann::json{{"checkpoint", checkpoint},
                                  {"model", loaded.info.model},
                                  {"test_loss", r.test.loss},
                                  {"test_acc", r.test.acc},
                                  {"rotated_test_loss", r.rotated_test.loss},
                                  {"rotated_test_acc", r.rotated_test.acc},
                                  {"rotation_degrees", rotation},
                                  {"seed", seed},
                                  {"images", test.images.size(0)}}
                       .dump(2)
                << "\n";
    } else {
      std::cout << train::test_lines(r);
    }
  });
}

void add_predict_command(CLI::App& app, int& exit_code) {
  static std::string checkpoint, model, data_dir = data::kDefaultDataDir, invert = "auto";
  static std::vector<std::string> images;
  static int top_k = 3;
  static bool json = false;
  CLI::App* cmd = app.add_subcommand("predict", "Classify image files (PNG, JPEG, BMP, PGM, ...)");
  cmd->add_option("--checkpoint", checkpoint, "state_dict file (convkit's or Python's torch.save)")->required();
  cmd->add_option("--model", model, "Architecture, when no model.json is beside the checkpoint: " + joined_model_names());
  cmd->add_option("--data", data_dir, "Training IDX files, for the normalisation of a checkpoint without model.json")
      ->capture_default_str();
  cmd->add_option("--invert", invert, "auto|yes|no: make dark-on-light photos light-on-dark (auto: judge by the border)")
      ->capture_default_str();
  cmd->add_option("--top", top_k, "How many classes to list per image")->capture_default_str()->check(CLI::Range(1, 10));
  cmd->add_flag("--json", json, "Print a JSON array instead of lines");
  cmd->add_option("images", images, "Image files")->required();
  cmd->callback([&exit_code] {
    const data::Invert invert_mode = data::parse_invert(invert);
    configure_threads(1);  // single images: threads only add start-up cost
    auto loaded = train::load_model(checkpoint, model, data_dir);
    const data::Normalization norm{loaded.info.mean, loaded.info.std};
    nlohmann::json results = nlohmann::json::array();
    for (const auto& file : images) {
      try {
        const data::GreyImage image = data::read_grey_image(file);
        const torch::Tensor pixels = data::to_mnist_pixels(image, invert_mode).unsqueeze(0);
        const torch::Tensor probs = train::predict_probabilities(*loaded.model, pixels, norm, torch::kCPU)[0];
        const auto [values, indices] = probs.topk(top_k);
        nlohmann::json top = nlohmann::json::array();
        std::string line = strprintf("%s: %s (%.1f%%) | top %d:", file.c_str(),
                                     data::kClassNames[indices[0].item<int64_t>()], 100 * values[0].item<float>(), top_k);
        for (int k = 0; k < top_k; ++k) {
          const int64_t c = indices[k].item<int64_t>();
          top.push_back({{"class", c}, {"name", data::kClassNames[c]}, {"probability", values[k].item<float>()}});
          line += strprintf(" %s %.1f%%%s", data::kClassNames[c], 100 * values[k].item<float>(), k + 1 < top_k ? "," : "");
        }
        results.push_back({{"file", file}, {"class", top[0]["class"]}, {"name", top[0]["name"]},
                           {"probability", top[0]["probability"]}, {"top", top}});
        if (!json) std::cout << line << "\n" << std::flush;
      } catch (const Error& e) {
        std::cerr << "convkit: " << e.what() << "\n";
        results.push_back({{"file", file}, {"error", e.what()}});
        exit_code = 1;
      }
    }
    if (json) std::cout << results.dump(2) << "\n";
  });
}

void add_report_command(CLI::App& app) {
  static std::string run_dir, device = "auto";
  static int threads = 0;
  CLI::App* cmd = app.add_subcommand("report", "Regenerate a finished run's figures and report.html");
  cmd->add_option("run_dir", run_dir, "Run directory (as written by convkit train)")->required();
  cmd->add_option("--threads", threads, "Compute threads (0: all cores)")->capture_default_str();
  cmd->add_option("--device", device, "auto|cpu|cuda")->capture_default_str();
  cmd->callback([] {
    configure_threads(threads);
    report::regenerate_report(run_dir, torch::Device(resolve_device(device)), std::cout);
  });
}

void add_compare_command(CLI::App& app) {
  static std::vector<std::string> runs;
  static std::string out_dir = "runs/compare";
  CLI::App* cmd = app.add_subcommand("compare", "Overlay several runs' accuracy under rotation (PNG + HTML)");
  cmd->add_option("runs", runs, "Run directories")->required();
  cmd->add_option("--out", out_dir, "Directory for rotation.png and compare.html")->capture_default_str();
  cmd->callback([] {
    std::vector<std::filesystem::path> paths(runs.begin(), runs.end());
    report::compare_runs(paths, out_dir, std::cout);
  });
}

void add_sweep_command(CLI::App& app, int& exit_code) {
  static train::SweepOptions o;
  static std::string file;
  CLI::App* cmd = app.add_subcommand("sweep", "Grid or random search over training settings, with a leaderboard");
  cmd->add_option("file", file, "Sweep description (JSON): out, base, grid or random, jobs")->required();
  cmd->add_option("--out", o.out_dir, "Directory for the trials and the leaderboard (default: the file's \"out\")");
  cmd->add_option("--jobs", o.jobs, "Trials run side by side, sharing the threads")->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", o.threads, "Total compute threads (0: all cores)")->check(CLI::NonNegativeNumber);
  cmd->callback([&exit_code] {
    o.file = file;
    exit_code = train::run_sweep(o, std::filesystem::read_symlink("/proc/self/exe").string(), std::cout);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"convkit: train, evaluate and explain convolutional image classifiers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "convkit 0.1.0");
  int exit_code = 0;
  add_train_command(app);
  add_eval_command(app);
  add_predict_command(app, exit_code);
  add_report_command(app);
  add_compare_command(app);
  add_sweep_command(app, exit_code);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "convkit: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const Error& e) {
    std::cerr << "convkit: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // LibTorch errors carry a multi-line backtrace; the first line is the message.
    const std::string what = e.what();
    std::cerr << "convkit: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  }
  return exit_code;
}
