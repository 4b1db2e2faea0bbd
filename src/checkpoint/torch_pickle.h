// Reads state_dicts as `torch.load(f, map_location='cpu')` does: the zip format (PyTorch 1.6 on)
// and the legacy one, pickle protocols 2 to 5, storages saved on any device (loaded onto the CPU
// with a note on stderr). Written by Python's `torch.save(model.state_dict(), f)` (an OrderedDict
// carrying `_metadata`, which LibTorch's own unpickler turns into None) or by LibTorch's
// `torch::pickle_save` (a typed Dict). Only the pickle subset that state_dicts use is accepted;
// anything else is a clear Error naming the file. No record or storage is allocated before its
// size is checked against the file's.
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace convkit::checkpoint {

std::vector<std::pair<std::string, torch::Tensor>> read_torch_state_dict(const std::filesystem::path& file);

}  // namespace convkit::checkpoint
