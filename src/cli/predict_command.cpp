#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/dataset.h"
#include "data/image.h"
#include "eval/load_model.h"
#include "eval/predict.h"
#include "models/registry.h"
#include "run/options.h"
#include "util/error.h"
#include "util/format.h"
#include "util/runtime.h"

namespace convkit::cli {
namespace {

struct PredictOptions {
  std::string checkpoint, model, tta;
  std::string data_dir = run::TrainOptions{}.data_dir;
  std::string invert = "auto";
  std::vector<std::string> images;
  int top_k = 3;
  bool json = false;
};

// {file, class, name, probability, top: [{class, name, probability}, ...]} for one image file.
nlohmann::json predict_file(const std::string& file, eval::LoadedModel& loaded, data::Invert invert, int top_k) {
  const data::Picture image = data::read_picture(file);
  const torch::Tensor pixels = data::to_model_pixels(image, invert, loaded.info.shape).unsqueeze(0);
  const torch::Tensor probs =
      eval::predict_probabilities(*loaded.model, pixels, loaded.normalization(), torch::kCPU)[0];
  const int64_t shown = std::min<int64_t>(top_k, probs.size(0));
  const auto [values, indices] = probs.topk(shown);
  nlohmann::json top = nlohmann::json::array();
  for (int64_t k = 0; k < shown; ++k) {
    const int64_t c = indices[k].item<int64_t>();
    top.push_back({{"class", c}, {"name", loaded.info.classes[c]}, {"probability", values[k].item<float>()}});
  }
  return {{"file", file},
          {"class", top[0]["class"]},
          {"name", top[0]["name"]},
          {"probability", top[0]["probability"]},
          {"top", top}};
}

// "FILE: NAME (P%) | top K: NAME P%, NAME P%, ..."
std::string prediction_line(const nlohmann::json& p) {
  auto percent = [](const nlohmann::json& v) { return 100 * v.get<double>(); };
  std::string line = strprintf("%s: %s (%.1f%%) | top %zu:", p["file"].get<std::string>().c_str(),
                               p["name"].get<std::string>().c_str(), percent(p["probability"]), p["top"].size());
  for (size_t k = 0; k < p["top"].size(); ++k) {
    const auto& t = p["top"][k];
    line += strprintf(" %s %.1f%%%s", t["name"].get<std::string>().c_str(), percent(t["probability"]),
                      k + 1 < p["top"].size() ? "," : "");
  }
  return line;
}

int run_predict(const PredictOptions& o) {
  const data::Invert invert = data::parse_invert(o.invert);
  configure_threads(1);  // single images: threads only add start-up cost
  eval::LoadedModel loaded = eval::load_model(o.checkpoint, o.model, o.data_dir);
  use_tta(loaded, o.tta, o.checkpoint);
  nlohmann::json results = nlohmann::json::array();
  int exit_code = 0;
  for (const auto& file : o.images) {
    try {
      results.push_back(predict_file(file, loaded, invert, o.top_k));
      if (!o.json) std::cout << prediction_line(results.back()) << "\n" << std::flush;
    } catch (const std::exception& e) {
      // convkit's errors name the file already; LibTorch's (an image it rejects) do not.
      const std::string message =
          dynamic_cast<const Error*>(&e) ? std::string(e.what()) : file + ": " + first_line(e.what());
      std::cerr << "convkit: " << message << "\n";
      results.push_back({{"file", file}, {"error", message}});
      exit_code = 1;
    }
  }
  if (o.json) std::cout << results.dump(2) << "\n";
  return exit_code;
}

}  // namespace

void add_predict_command(CLI::App& app, int& exit_code) {
  auto o = std::make_shared<PredictOptions>();
  CLI::App* cmd = app.add_subcommand(
      "predict", "Classify image files (PNG, JPEG, BMP, GIF, TGA, PGM/PPM), converted to the network's input");
  cmd->add_option("--checkpoint", o->checkpoint, "state_dict file (convkit's or Python's torch.save)")->required();
  cmd->add_option("--model", o->model,
                  "Architecture, when no model.json is beside the checkpoint: " + join(models::model_names(), "|"));
  cmd->add_option("--data", o->data_dir,
                  "The training data, for the shape, classes and normalisation of a checkpoint without model.json")
      ->capture_default_str();
  cmd->add_option("--invert", o->invert,
                  "auto|yes|no: make dark-on-light photos light-on-dark (auto: judge by the border, for grey "
                  "networks only)")
      ->capture_default_str();
  cmd->add_option("--top", o->top_k, "How many classes to list per image (at most the model's classes)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_flag("--json", o->json, "Print a JSON array instead of lines");
  add_tta_flag(*cmd, o->tta);
  cmd->add_option("images", o->images, "Image files (after --, names may start with -)")->required();
  cmd->callback([o, &exit_code] { exit_code = run_predict(*o); });
}

}  // namespace convkit::cli
