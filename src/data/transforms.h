// Batched geometric transforms on tensors.
#pragma once

#include <torch/types.h>

namespace convkit::data {

// Rotates each image of `pixels` ([N,C,H,W] float, raw 0..255 values) about its centre by its
// own angle in degrees (counter-clockwise on screen, as PIL and torchvision do), nearest
// neighbour, with the uncovered corners set to 0: torchvision's RandomRotation(fill=0) on tensors.
torch::Tensor rotate(const torch::Tensor& pixels, const torch::Tensor& angles_degrees);

// One angle per image, uniform in [-degrees, +degrees], drawn from the global generator one
// image at a time exactly as torchvision's RandomRotation.get_params does.
torch::Tensor draw_rotation_angles(int64_t n, double degrees);

// Training-time augmentation, batched and drawn from the global generator (so runs are
// reproducible per seed, and --resume restores it).
struct Augmentation {
  double rotate_degrees = 0;  // each image turned by a uniform angle in [-d, d]
  int64_t translate = 0;      // each image shifted by whole pixels in [-t, t] along x and y
  bool hflip = false;         // each image mirrored left-right with probability 1/2
  double erase = 0;           // each image, with this probability, gets a random box erased (see erase_boxes)
  bool enabled() const { return rotate_degrees > 0 || translate > 0 || hflip || erase > 0; }
};

// Applies `aug` to a batch of model inputs [N,C,H,W]; uncovered pixels get `background`
// (the normalised value of a black pixel, [1,C,1,1]).
torch::Tensor augment(const torch::Tensor& inputs, const Augmentation& aug, const torch::Tensor& background);

// Random erasing (torchvision's RandomErasing with one attempt): each image of the model inputs
// `x` [N,C,H,W], with probability p, gets a box of 2-33% of its area, aspect ratio 0.3-3.3
// (log-uniform), at a uniform place, set to 0, the mean of the normalised data.
torch::Tensor erase_boxes(const torch::Tensor& x, double p);

}  // namespace convkit::data
