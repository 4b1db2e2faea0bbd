// A dataset held in memory as tensors: IDX files (FashionMNIST, MNIST or any set of 28x28 IDX
// images, of up to 256 classes) or image folders as torchvision's ImageFolder reads them.
#pragma once

#include <torch/types.h>

#include <array>
#include <filesystem>
#include <string>
#include <vector>

namespace convkit::data {

inline constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int64_t kNumClasses = 10;  // FashionMNIST's
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
  torch::Tensor images;  // uint8 [N, 28, 28], 0 = black
  torch::Tensor labels;  // int64 [N], indices into the dataset's classes
};

struct Dataset {
  Split train;  // all the training images (before the train/valid split)
  Split test;
  std::vector<std::string> classes;  // index = label
  std::string skipped;               // image files skipped with skip_bad, said in a line; empty if none
};

// How image folders are read (IDX files ignore it).
struct FolderOptions {
  bool resize = false;    // resize pictures of another size to 28x28, else refuse them
  bool skip_bad = false;  // skip files that cannot be decoded, and count them, else refuse them
};

// The dataset in `dir`: IDX files (train-* and t10k-*, each raw or .gz) when it has them, else
// image folders `dir/train/<class>/...` and `dir/test/<class>/...`. `limit` > 0 keeps only the
// first `limit` images of each split. Class names: for IDX files a `classes.txt` beside them
// (one name a line), else FashionMNIST's when the files are FashionMNIST's, else the labels'
// digits; for folders the training tree's folder names.
Dataset load_dataset(const std::filesystem::path& dir, int64_t limit = 0, FolderOptions folders = {});

// The same with the test split alone (`train` left empty), for evaluation.
Dataset load_test_set(const std::filesystem::path& dir, int64_t limit = 0, FolderOptions folders = {});

// Whether `dir` holds image folders rather than IDX files.
bool is_image_folder_dataset(const std::filesystem::path& dir);

// Loads one IDX images/labels pair (kTrainFiles or kTestFiles) and checks they agree.
Split load_split(const std::filesystem::path& dir, IdxStems stems, int64_t limit = 0);

// The first `n` images and labels of `split`.
Split first(const Split& split, int64_t n);

}  // namespace convkit::data
