#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "deploy/export_model.h"
#include "eval/load_model.h"
#include "models/registry.h"
#include "run/options.h"
#include "run/run_dir.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::cli {
namespace {

struct ExportOptions {
  std::string run_dir, checkpoint, model, format = "onnx", out, pixel_type = "float";
  std::string data_dir = run::TrainOptions{}.data_dir;
  deploy::ExportSettings settings;
  bool json = false;
};

void run_export(ExportOptions o) {
  if (o.run_dir.empty() == o.checkpoint.empty())
    throw Error("export: give a RUN_DIR or --checkpoint FILE (one of them)");
  const deploy::ExportFormat format = deploy::parse_export_format(o.format);
  o.settings.pixel_type = deploy::parse_pixel_type(o.pixel_type);
  deploy::check_export_settings(o.settings);
  const std::filesystem::path checkpoint =
      o.checkpoint.empty() ? run::RunDir{o.run_dir}.model() : std::filesystem::path(o.checkpoint);
  std::filesystem::path out = o.out;
  if (out.empty())
    out = std::filesystem::path(checkpoint)
              .replace_extension(format == deploy::ExportFormat::Onnx ? ".onnx" : ".torchscript.pt");
  eval::LoadedModel loaded = eval::load_model(checkpoint, o.model, o.data_dir);
  const deploy::ExportSummary s = deploy::export_model(loaded, format, out, o.settings);
  if (o.json) {
    std::cout << nlohmann::json{{"format", s.format},         {"file", s.file.string()},
                                {"model", loaded.info.model}, {"parameters", s.parameters},
                                {"bytes", s.bytes},           {"input", s.input},
                                {"output", s.output},         {"classes", loaded.info.classes}}
                     .dump(2)
              << "\n";
    return;
  }
  std::cout << strprintf("Exported %s to %s (%s, %lld parameters, %lld bytes)\n  input:  %s\n  output: %s\n",
                         loaded.info.model.c_str(), s.file.string().c_str(), s.format.c_str(),
                         static_cast<long long>(s.parameters), static_cast<long long>(s.bytes), s.input.c_str(),
                         s.output.c_str());
}

}  // namespace

void add_export_command(CLI::App& app) {
  auto o = std::make_shared<ExportOptions>();
  CLI::App* cmd = app.add_subcommand("export", "Write a trained network as ONNX (OpenCV, ONNX Runtime) or TorchScript");
  cmd->add_option("run_dir", o->run_dir, "Run directory (its best checkpoint, model.pt)");
  cmd->add_option("--checkpoint", o->checkpoint, "state_dict file instead of a run directory");
  cmd->add_option("--model", o->model,
                  "Architecture, when no model.json is beside the checkpoint: " + join(models::model_names(), "|"));
  cmd->add_option("--data", o->data_dir, "Training IDX files, for the normalisation of a checkpoint without model.json")
      ->capture_default_str();
  cmd->add_option("--format", o->format, "onnx|torchscript")->capture_default_str();
  cmd->add_option("--out", o->out, "File to write (default: beside the checkpoint, .onnx or .torchscript.pt)");
  cmd->add_flag("--with-preprocessing", o->settings.with_preprocessing,
                "The graph takes raw pixels 0..255 [N,C,H,W] and normalises them itself");
  cmd->add_option("--pixel-type", o->pixel_type, "float|uint8: the raw pixels' type, with --with-preprocessing")
      ->capture_default_str();
  cmd->add_flag("--softmax", o->settings.softmax, "Output probabilities instead of logits");
  cmd->add_flag("--fold-bn", o->settings.fold_bn, "Fold batch norm into the convolution or dense layer before it");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of lines");
  cmd->callback([o] { run_export(*o); });
}

}  // namespace convkit::cli
