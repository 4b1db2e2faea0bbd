// The tutorial's normalisation: constants from the training images, and the model's input.
#pragma once

#include <torch/types.h>

namespace convkit::data {

struct Normalization {
  float mean = 0.f;
  float std = 1.f;
};

// The tutorial's constants: data.float().mean()/255 and data.float().std()/255, in float32.
Normalization normalization_from(const torch::Tensor& train_images);

// Raw pixel values (uint8 or float in 0..255, [N,H,W] or [N,1,H,W]) -> CPU float [N,1,H,W],
// computed exactly as ToTensor + Normalize: (x / 255 - mean) / std.
torch::Tensor to_model_input(const torch::Tensor& pixels, Normalization norm);

// The normalised value of a black pixel: what augmentation fills uncovered pixels with.
inline float normalized_black(Normalization norm) { return (0.f - norm.mean) / norm.std; }

}  // namespace convkit::data
