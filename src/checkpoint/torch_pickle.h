// Reads state_dicts from PyTorch's zip serialisation, whether written by Python's
// `torch.save(model.state_dict(), f)` (an OrderedDict carrying `_metadata`, which LibTorch's own
// unpickler turns into None) or by LibTorch's `torch::pickle_save` (a typed Dict).
// Only the pickle subset that state_dicts use is accepted; anything else is a clear Error.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace convkit::checkpoint {

std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(const std::filesystem::path& file);

}  // namespace convkit::checkpoint
