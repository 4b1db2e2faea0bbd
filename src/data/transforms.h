// Batched geometric transforms on tensors.
#pragma once

#include <torch/torch.h>

namespace convkit::data {

// Rotates each image of `pixels` ([N,1,H,W] float, raw 0..255 values) about its centre by its
// own angle in degrees (counter-clockwise on screen, as PIL and torchvision do), nearest
// neighbour, with the uncovered corners set to 0: torchvision's RandomRotation(fill=0) on tensors.
torch::Tensor rotate(const torch::Tensor& pixels, const torch::Tensor& angles_degrees);

// One angle per image, uniform in [-degrees, +degrees], drawn from the global generator one
// image at a time exactly as torchvision's RandomRotation.get_params does.
torch::Tensor draw_rotation_angles(int64_t n, double degrees);

}  // namespace convkit::data
