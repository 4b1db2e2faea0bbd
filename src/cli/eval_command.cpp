#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "data/dataset.h"
#include "data/normalization.h"
#include "data/npy.h"
#include "eval/batched_forward.h"
#include "eval/load_model.h"
#include "eval/test_sets.h"
#include "models/registry.h"
#include "models/test_time_augmentation.h"
#include "run/options.h"
#include "run/run_dir.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"
#include "util/runtime.h"

namespace convkit::cli {
namespace {

struct EvalOptions {
  std::string checkpoint, model, logits_file, tta;
  std::string data_dir = run::TrainOptions{}.data_dir;
  std::string device = run::TrainOptions{}.device;
  double rotation = run::TrainOptions{}.rotation;
  int64_t batch_size = run::TrainOptions{}.batch_size;
  int64_t limit = 0;
  run::TrainOptions data;  // holds the data flags (run::kDataSettings)
  uint64_t seed = run::TrainOptions{}.seed;
  int threads = 0;
  bool json = false, exact = false;
};

// The logits [N, classes] of the (unrotated) test images, for comparisons outside convkit.
void write_test_logits(const std::string& file, eval::LoadedModel& loaded, const data::Split& test,
                       const torch::Device& device) {
  torch::Tensor logits = torch::empty({test.images.size(0), loaded.info.num_classes});
  eval::forward_in_batches(
      *loaded.model, test.images, loaded.normalization(), device,
      [&](int64_t start, const models::Output& out) { logits.narrow(0, start, out.logits.size(0)).copy_(out.logits); });
  data::write_npy(file, logits);
}

}  // namespace

CLI::Option* add_tta_flag(CLI::App& cmd, std::string& storage) {
  return cmd.add_option("--tta", storage,
                        "Test-time augmentation: none|flip|shift|flip,shift (default: the run's, from run.json beside "
                        "the checkpoint, else none)");
}

std::string use_tta(eval::LoadedModel& loaded, const std::string& requested, const std::string& checkpoint) {
  std::string tta = requested;
  const auto run_settings = run::RunDir{std::filesystem::path(checkpoint).parent_path()}.settings();
  if (tta.empty() && std::filesystem::exists(run_settings)) {
    const nlohmann::json settings = read_json_file(run_settings);
    if (settings.contains("tta") && settings["tta"].is_string()) tta = settings["tta"].get<std::string>();
  }
  const models::TtaViews views = models::parse_tta(tta);
  loaded.model = models::with_tta(loaded.model, views, data::normalized_black(loaded.normalization()));
  return views.str();
}

namespace {

void run_eval(const EvalOptions& o) {
  if (!(o.rotation >= 0 && o.rotation <= 180)) throw Error("--rotation must be between 0 and 180 degrees");
  configure_threads(o.threads);
  const torch::Device device(resolve_device(o.device));
  run::validate(o.data);
  const data::DataOptions data_options = run::data_options(o.data);
  eval::LoadedModel loaded = eval::load_model(o.checkpoint, o.model, o.data_dir, data_options);
  loaded.model->set_exact(o.exact);
  loaded.model->to(device);
  const std::string tta = use_tta(loaded, o.tta, o.checkpoint);
  const data::Split test = eval::load_test_images_for(loaded, o.data_dir, o.limit, data_options);
  if (!o.logits_file.empty()) write_test_logits(o.logits_file, loaded, test, device);
  torch::manual_seed(o.seed);
  const auto r =
      eval::evaluate_test_sets(*loaded.model, test, loaded.normalization(), o.rotation, o.batch_size, device, !o.json);
  if (!o.json) {
    std::cout << eval::test_lines(r);
    return;
  }
  std::cout << nlohmann::json{{"checkpoint", o.checkpoint},
                              {"model", loaded.info.model},
                              {"tta", tta},
                              {"test_loss", r.test.loss},
                              {"test_acc", r.test.acc},
                              {"rotated_test_loss", r.rotated_test.loss},
                              {"rotated_test_acc", r.rotated_test.acc},
                              {"rotation_degrees", o.rotation},
                              {"seed", o.seed},
                              {"images", test.images.size(0)}}
                   .dump(2)
            << "\n";
}

}  // namespace

void add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalOptions>();
  CLI::App* cmd = app.add_subcommand("eval", "Test and rotated-test loss/accuracy of a checkpoint");
  cmd->add_option("--checkpoint", o->checkpoint, "state_dict file (convkit's or Python's torch.save)")->required();
  cmd->add_option("--model", o->model,
                  "Architecture, when no model.json is beside the checkpoint: " + join(models::model_names(), "|"));
  cmd->add_option("--data", o->data_dir,
                  "Directory with IDX files, image folders (train/<class>/, test/<class>/) or CIFAR binary files")
      ->capture_default_str();
  add_data_flags(*cmd, o->data);
  cmd->add_option("--rotation", o->rotation, "Max angle (degrees) of the rotated test set")->capture_default_str();
  cmd->add_option("--batch-size", o->batch_size, "Images per batch")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--seed", o->seed, "Seed for the rotation angles")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--limit", o->limit, "Use only the first N test images (0: all)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--threads", o->threads, "Compute threads (0: all cores)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--device", o->device, "auto|cpu|cuda")->capture_default_str();
  cmd->add_option("--logits", o->logits_file, "Also write the test images' logits [N, classes] as a .npy file");
  cmd->add_flag("--json", o->json, "Print one JSON object instead of the tutorial's lines");
  cmd->add_flag("--exact", o->exact, "LibTorch's kernels only (bit-identical to Python)");
  add_tta_flag(*cmd, o->tta);
  cmd->callback([o] { run_eval(*o); });
}

}  // namespace convkit::cli
