// FashionMNIST (or any MNIST-shaped IDX dataset) held in memory as tensors.
#pragma once

#include <torch/types.h>

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace convkit::data {

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kNumClasses = 10;
inline constexpr int64_t kImageSize = 28;

// FashionMNIST's label names, index = label.
inline const std::array<const char*, kNumClasses> kClassNames = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
std::vector<std::string> class_names();

// The IDX files' stems (each raw, or with .gz).
struct IdxStems {
  const char* images;
  const char* labels;
};
inline constexpr IdxStems kTrainFiles = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"};
inline constexpr IdxStems kTestFiles = {"t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};

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

// Loads one images/labels pair (kTrainFiles or kTestFiles) and checks they agree.
Split load_split(const std::filesystem::path& dir, IdxStems stems, int64_t limit = 0);

// The first `n` images and labels of `split`.
Split first(const Split& split, int64_t n);

}  // namespace convkit::data
