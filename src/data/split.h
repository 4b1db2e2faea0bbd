// The tutorial's seeded 90/10 train/valid split.
#pragma once

#include <torch/types.h>

namespace convkit::data {

inline constexpr double kTrainFraction = 0.9;  // the tutorial's VALID_RATIO

struct TrainValidIndices {
  torch::Tensor train;  // int64 indices into the training split
  torch::Tensor valid;
};

// torch.utils.data.random_split(data, [int(n * 0.9), rest]) on the global generator.
TrainValidIndices random_split(int64_t n);

}  // namespace convkit::data
