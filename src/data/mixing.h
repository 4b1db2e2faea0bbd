// Mixup and CutMix (--mixup ALPHA, --cutmix ALPHA): each training batch blended with a shuffled
// copy of itself, the labels blended in the same proportion, so that the network learns
// straight lines between examples instead of sharp edges around each.
#pragma once

#include <torch/types.h>

namespace convkit::data {

struct Mixing {
  double mixup_alpha = 0;   // Beta(alpha, alpha) draws the share of the original image
  double cutmix_alpha = 0;  // the same for the area CutMix keeps
  bool enabled() const { return mixup_alpha > 0 || cutmix_alpha > 0; }
};

struct MixedBatch {
  torch::Tensor inputs;   // [N,C,H,W]
  torch::Tensor targets;  // float [N, classes]: class probabilities for cross-entropy
};

// One mixed batch, drawn from the global generator: with both kinds asked for, each batch is
// one or the other with probability 1/2 (as timm does). Mixup: lam * x + (1 - lam) * x[perm].
// CutMix: a box of x[perm] pasted into x, lam then the share of x left uncovered. Targets:
// lam * onehot(y) + (1 - lam) * onehot(y[perm]).
MixedBatch mix(const torch::Tensor& inputs, const torch::Tensor& labels, int64_t classes, const Mixing& mixing);

}  // namespace convkit::data
