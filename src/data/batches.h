// Batches as a DataLoader would collate them, and the memory the training set lives in.
#pragma once

#include <torch/types.h>

namespace convkit::data {

// source.index_select(0, index) for a CPU tensor: the batch a DataLoader would collate. One
// memcpy per row (index_select costs about twice that per batch, and at two threads starts a
// parallel region for 64 rows).
torch::Tensor gather_rows(const torch::Tensor& source, const torch::Tensor& index);

// An uninitialised CPU float tensor; a large one sits on transparent huge pages where the kernel
// offers them, because training gathers random rows of it.
torch::Tensor empty_floats(at::IntArrayRef sizes);

}  // namespace convkit::data
