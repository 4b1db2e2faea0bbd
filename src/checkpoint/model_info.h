// The JSON file beside a checkpoint (model.pt -> model.json) naming the architecture, the input's
// shape, the classes and the normalisation the network was trained with, so eval, predict and
// report need no flags.
#pragma once

#include <filesystem>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/normalization.h"

namespace convkit::checkpoint {

struct CheckpointInfo {
  std::string model;  // a name make_model accepts
  int64_t num_classes = data::kNumClasses;
  data::Normalization normalization;                       // what the network was trained with
  std::vector<std::string> classes = data::class_names();  // index = label; older files: FashionMNIST's
  data::ImageShape shape;                                  // of one input image; older files: 1x28x28
};

// The normalisation as JSON: numbers for one channel (as older files have it), lists for more;
// read back with an Error naming `source` when it is malformed.
nlohmann::json normalization_json(const data::Normalization& norm);
data::Normalization normalization_from_json(const nlohmann::json& j, const std::string& source);

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint);
void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info);
// The info beside `checkpoint`, or nullopt when there is none (e.g. a file written by Python) or
// the JSON file there is not convkit's (no "format": "convkit-checkpoint-1"); an Error naming
// the file when it is convkit's but malformed.
std::optional<CheckpointInfo> read_checkpoint_info(const std::filesystem::path& checkpoint);

}  // namespace convkit::checkpoint
