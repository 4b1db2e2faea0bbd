// A trained network from a checkpoint, ready for inference.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/model_info.h"
#include "data/dataset.h"
#include "data/normalization.h"
#include "models/classifier.h"

namespace convkit::eval {

struct LoadedModel {
  models::Classifier model;         // in eval mode
  checkpoint::CheckpointInfo info;  // architecture and normalisation
  const data::Normalization& normalization() const { return info.normalization; }
};

// The architecture comes from `model_name` when given, else from model.json beside the
// checkpoint; the normalisation and class names from model.json, else (a checkpoint written by
// Python) from the training images in `data_dir`, as the tutorial computes them.
LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir, const data::DataOptions& options = {});

// The test images of the dataset in `data_dir` (the first `limit`; 0: all), checked against the
// model: an Error when their shape or classes are not the ones it was trained on. Image folders
// are decoded to the model's channels and size unless `options` names others.
data::Split load_test_images_for(const LoadedModel& loaded, const std::string& data_dir, int64_t limit,
                                 data::DataOptions options = {});

}  // namespace convkit::eval
