// FashionMNIST (or any MNIST-shaped IDX dataset) held in memory as tensors, the tutorial's
// normalisation, and its seeded 90/10 train/valid split.
#pragma once

#include <torch/torch.h>

#include <array>
#include <filesystem>
#include <string>

namespace convkit::data {

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kNumClasses = 10;
inline constexpr int64_t kImageSize = 28;
inline constexpr double kTrainFraction = 0.9;  // the tutorial's VALID_RATIO

// FashionMNIST's label names, index = label.
inline const std::array<const char*, kNumClasses> kClassNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Split {
  torch::Tensor images;  // uint8 [N, 28, 28], as stored in the IDX file
  torch::Tensor labels;  // int64 [N], 0..9
};

struct Mnist {
  Split train;  // the 60,000 training images (before the train/valid split)
  Split test;
};

// Loads train-* and t10k-* from `dir`; `limit` > 0 keeps only the first `limit` images of each.
Mnist load_mnist(const std::filesystem::path& dir, int64_t limit = 0);

// Loads one images/labels pair and checks they agree.
Split load_split(const std::filesystem::path& dir, const std::string& images_stem,
                 const std::string& labels_stem, int64_t limit = 0);

struct Normalization {
  float mean = 0.f;
  float std = 1.f;
};

// The tutorial's constants: data.float().mean()/255 and data.float().std()/255, in float32.
Normalization normalization_from(const torch::Tensor& train_images);

// Raw pixel values (uint8 or float in 0..255, [N,H,W] or [N,1,H,W]) -> CPU float [N,1,H,W],
// computed exactly as ToTensor + Normalize: (x / 255 - mean) / std.
torch::Tensor to_model_input(const torch::Tensor& pixels, Normalization norm);

// source.index_select(0, index) for a CPU tensor: the batch a DataLoader would collate. One
// memcpy per row (index_select costs ~2x that per batch, and at two threads starts a parallel
// region for 64 rows).
torch::Tensor gather_rows(const torch::Tensor& source, const torch::Tensor& index);

struct TrainValidIndices {
  torch::Tensor train;  // int64 indices into the training split
  torch::Tensor valid;
};

// torch.utils.data.random_split(data, [int(n * 0.9), rest]) on the global generator.
TrainValidIndices random_split(int64_t n);

}  // namespace convkit::data
