// The tutorial's normalisation: constants from the training images, and the model's input.
#pragma once

#include <torch/types.h>

#include <string>
#include <vector>

namespace convkit::data {

// One mean and standard deviation per channel, as fractions of 255.
struct Normalization {
  std::vector<float> mean = {0.f};
  std::vector<float> std = {1.f};
  int64_t channels() const { return static_cast<int64_t>(mean.size()); }
  std::string str() const;  // "mean 0.2860, std 0.3530", or per channel "mean (0.4914, ...), std (...)"
};

// The tutorial's constants per channel: data.float().mean()/255 and data.float().std()/255 over
// each channel's pixels (for one channel, the tutorial's expression itself), in float32.
Normalization normalization_from(const torch::Tensor& train_images);

// Raw pixel values (uint8 or float in 0..255, [N,C,H,W]) -> CPU float [N,C,H,W], computed
// exactly as ToTensor + Normalize: (x / 255 - mean) / std, channel by channel.
torch::Tensor to_model_input(const torch::Tensor& pixels, const Normalization& norm);

// The normalised value of a black pixel, [1, C, 1, 1]: what augmentation fills uncovered pixels with.
torch::Tensor normalized_black(const Normalization& norm);

}  // namespace convkit::data
