#include "eval/load_model.h"

#include <iostream>
#include "checkpoint/state_dict.h"
#include "data/dataset.h"
#include "models/registry.h"

#include "util/error.h"
#include "util/format.h"

namespace convkit::eval {

LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir, const data::DataOptions& options) {
  const checkpoint::StateDict state = checkpoint::read_state_dict(checkpoint);
  std::optional<checkpoint::CheckpointInfo> info = checkpoint::read_checkpoint_info(checkpoint);
  if (!info && model_name.empty()) {
    throw file_error(checkpoint.string(), "no " + checkpoint::info_path_for(checkpoint).filename().string() +
                                              " beside it to name the architecture; pass --model");
  }
  if (!info) {
    const data::Dataset data = data::load_dataset(data_dir, 0, options);
    info = checkpoint::CheckpointInfo{model_name, static_cast<int64_t>(data.classes.size()),
                                      data::normalization_from(data.train.images), data.classes, data.shape()};
  }
  if (!model_name.empty()) info->model = model_name;
  LoadedModel loaded{models::make_model(info->model, info->num_classes, info->shape), *info};
  checkpoint::load_state_dict(*loaded.model, state, checkpoint.string());
  loaded.model->eval();
  return loaded;
}

data::Split load_test_images_for(const LoadedModel& loaded, const std::string& data_dir, int64_t limit,
                                 data::DataOptions options) {
  // Image folders have no shape of their own until one is chosen: the model's.
  const bool folders = data::is_image_folder_dataset(data_dir, options);
  if (folders && options.channels == 0) options.channels = loaded.info.shape.channels;
  if (folders && options.height == 0)
    options.height = loaded.info.shape.height, options.width = loaded.info.shape.width;
  const data::Dataset data = data::load_test_set(data_dir, limit, options);
  if (!data.skipped.empty()) std::cerr << data.skipped << "\n";
  if (data.shape() != loaded.info.shape)
    throw file_error(data_dir, "has images of " + data.shape().str() +
                                   " (channels x height x width); the model takes " + loaded.info.shape.str() +
                                   " (--channels and --image-size convert them)");
  const auto count = static_cast<int64_t>(data.classes.size());
  // IDX labels are indices whatever the names; folders' labels are their names' places.
  const bool names_matter = folders;
  if (count != loaded.info.num_classes || (names_matter && data.classes != loaded.info.classes)) {
    throw file_error(data_dir, "has " + std::to_string(count) + " classes (" + join(data.classes, ", ") +
                                   "); the model was trained on " + std::to_string(loaded.info.num_classes) + " (" +
                                   join(loaded.info.classes, ", ") + ")");
  }
  return data.test;
}

}  // namespace convkit::eval
