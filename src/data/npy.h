// NumPy's .npy format (version 1.0), for arrays that Python scripts read with numpy.load.
#pragma once

#include <torch/types.h>

#include <filesystem>

namespace convkit::data {

// Writes a float32 or int64 CPU tensor of any shape as a little-endian C-order .npy file,
// atomically (a temporary file, then a rename).
void write_npy(const std::filesystem::path& file, const torch::Tensor& array);

}  // namespace convkit::data
