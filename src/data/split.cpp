#include "data/split.h"

#include <torch/torch.h>

namespace convkit::data {

TrainValidIndices random_split(int64_t n) {
  const auto n_train = static_cast<int64_t>(static_cast<double>(n) * kTrainFraction);
  const torch::Tensor perm = torch::randperm(n, torch::kInt64);
  return {perm.slice(0, 0, n_train), perm.slice(0, n_train, n)};
}

}  // namespace convkit::data
