// Checkpoints: a state_dict in PyTorch's own zip/pickle serialisation (Python's
// `model.load_state_dict(torch.load("model.pt"))` reads it unchanged) plus `model.json`
// beside it naming the architecture and the normalisation it was trained with.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace convkit::train {

using StateDict = std::vector<std::pair<std::string, torch::Tensor>>;

// Parameters then buffers, with their dotted names, detached CPU copies.
StateDict state_dict(const torch::nn::Module& module);

// Writes `module`'s state_dict to `file` atomically (temp file, then rename).
void save_state_dict(const torch::nn::Module& module, const std::filesystem::path& file);

// Reads a state_dict saved by convkit or by Python's torch.save(model.state_dict(), file).
StateDict read_state_dict(const std::filesystem::path& file);

// Copies `state` into `module`, strictly: an Error listing missing keys, unexpected keys and
// shape mismatches (as PyTorch's load_state_dict does) when they do not match.
void load_state_dict(torch::nn::Module& module, const StateDict& state, const std::string& source);

struct CheckpointInfo {
  std::string model;          // a name make_model accepts
  int64_t num_classes = 10;
  float mean = 0.f, std = 1.f;  // normalisation the network was trained with
};

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint);
void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info);
// The info beside `checkpoint`, or nullopt when there is none (e.g. a file written by Python).
std::optional<CheckpointInfo> read_checkpoint_info(const std::filesystem::path& checkpoint);

}  // namespace convkit::train
