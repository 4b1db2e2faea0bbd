#include "eval/load_model.h"

#include "checkpoint/state_dict.h"
#include "data/dataset.h"
#include "models/registry.h"
#include "util/error.h"

namespace convkit::eval {

LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir) {
  const checkpoint::StateDict state = checkpoint::read_state_dict(checkpoint);
  std::optional<checkpoint::CheckpointInfo> info = checkpoint::read_checkpoint_info(checkpoint);
  if (!info && model_name.empty()) {
    throw file_error(checkpoint.string(), "no " + checkpoint::info_path_for(checkpoint).filename().string() +
                                              " beside it to name the architecture; pass --model");
  }
  if (!info) {
    const data::Split train = data::load_split(data_dir, data::kTrainFiles);
    const data::Normalization norm = data::normalization_from(train.images);
    info = checkpoint::CheckpointInfo{model_name, data::kNumClasses, norm.mean, norm.std, data::class_names()};
  }
  if (!model_name.empty()) info->model = model_name;
  LoadedModel loaded{models::make_model(info->model, info->num_classes), *info};
  checkpoint::load_state_dict(*loaded.model, state, checkpoint.string());
  loaded.model->eval();
  return loaded;
}

}  // namespace convkit::eval
