// The JSON file beside a checkpoint (model.pt -> model.json) naming the architecture and the
// normalisation the network was trained with, so eval, predict and report need no flags.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace convkit::checkpoint {

struct CheckpointInfo {
  std::string model;  // a name make_model accepts
  int64_t num_classes = data::kNumClasses;
  float mean = 0.f, std = 1.f;                             // normalisation the network was trained with
  std::vector<std::string> classes = data::class_names();  // index = label; older files: FashionMNIST's
};

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint);
void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info);
// The info beside `checkpoint`, or nullopt when there is none (e.g. a file written by Python) or
// the JSON file there is not convkit's (no "format": "convkit-checkpoint-1"); an Error naming
// the file when it is convkit's but malformed.
std::optional<CheckpointInfo> read_checkpoint_info(const std::filesystem::path& checkpoint);

}  // namespace convkit::checkpoint
