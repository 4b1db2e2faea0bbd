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
  data::Normalization normalization() const { return {info.mean, info.std}; }
};

// The architecture comes from `model_name` when given, else from model.json beside the
// checkpoint; the normalisation and class names from model.json, else (a checkpoint written by
// Python) from the training images in `data_dir`, as the tutorial computes them.
LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir);

// The test images of the dataset in `data_dir` (the first `limit`; 0: all), checked against the
// model: an Error when their classes are not the ones it was trained on.
data::Split load_test_images_for(const LoadedModel& loaded, const std::string& data_dir, int64_t limit,
                                 data::FolderOptions folders = {});

}  // namespace convkit::eval
