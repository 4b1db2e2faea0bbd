// A model's weights as a state_dict in PyTorch's own zip/pickle serialisation: Python's
// `model.load_state_dict(torch.load("model.pt"))` reads it unchanged.
#pragma once

#include <torch/nn/module.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace convkit::checkpoint {

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

}  // namespace convkit::checkpoint
