// A trained network from a checkpoint, ready for inference.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/model_info.h"
#include "data/normalization.h"
#include "models/classifier.h"

namespace convkit::eval {

struct LoadedModel {
  models::Classifier model;         // in eval mode
  checkpoint::CheckpointInfo info;  // architecture and normalisation
  data::Normalization normalization() const { return {info.mean, info.std}; }
};

// The architecture comes from `model_name` when given, else from model.json beside the
// checkpoint; the normalisation from model.json, else (a checkpoint written by Python) it is
// computed from the training images in `data_dir`, as the tutorial does.
LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir);

}  // namespace convkit::eval
