// A dataset held in memory as uint8 tensors: IDX files (FashionMNIST, MNIST, EMNIST, any set of
// IDX images), image folders as torchvision's ImageFolder reads them, or CIFAR-10/100.
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

// The shape of one image, which is what a network is built for.
struct ImageShape {
  int64_t channels = 1, height = kImageSize, width = kImageSize;  // FashionMNIST's
  bool operator==(const ImageShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
  int64_t values() const { return channels * height * width; }
  std::string str() const;  // "3x32x32"
};

struct Split {
  torch::Tensor images;  // uint8 [N, C, H, W], 0 = black; RGB for 3 channels
  torch::Tensor labels;  // int64 [N], indices into the dataset's classes
};

struct Dataset {
  Split train;  // all the training images (before the train/valid split)
  Split valid;  // image folders' val/ when there is one (then nothing is split from train); else empty
  Split test;
  std::vector<std::string> classes;  // index = label
  std::string skipped;               // image files skipped with skip_bad, said in a line; empty if none
  ImageShape shape() const;          // of one image (the test images' when there is no training split)
};

// How a dataset is read. The zero values take what the data holds.
struct DataOptions {
  std::string format;             // "idx", "folder" or "cifar"; empty: told by what the folder holds
  int64_t channels = 0;           // 1 or 3 converts (colour to grey as PIL's convert("L"), grey to RGB)
  int64_t height = 0, width = 0;  // resize every image to this size (image folders: the files of other sizes)
  bool skip_bad = false;          // image folders: skip files that cannot be decoded, and count them
  bool coarse_labels = false;     // CIFAR-100: the 20 superclasses rather than the 100 classes
  uint64_t max_memory = 0;        // bytes the decoded images and their model input may take (0: half the machine's)
  double test_split = 0.2;        // one image-folder tree (DIR/<class>/...): the share of each class tested
  bool cache = true;              // image folders: keep the decoded images in the cache folder and reuse them
  bool write_cache = true;        // false: use a cached copy but never write one (a distributed run's other ranks)
};

// The dataset in `dir`, as `options.format` names it or as told by what `dir` holds:
// - IDX files (train-* and t10k-*, each raw or .gz): classes from a `classes.txt` beside them (one
//   name a line), else FashionMNIST's when the files are FashionMNIST's, else the labels' digits;
// - image folders `dir/train/<class>/...` and `dir/test/<class>/...` (and `dir/val/<class>/...`,
//   the validation images, when there is one), or one tree `dir/<class>/...` whose images are
//   split into training and test by a fixed seed (options.test_split of each class tested):
//   classes from the folders;
// - CIFAR-10 or CIFAR-100 binary files: classes from their names files.
// `limit` > 0 keeps only the first `limit` images of each split. Then the images are converted
// to `options`' channels and size, when given.
Dataset load_dataset(const std::filesystem::path& dir, int64_t limit = 0, const DataOptions& options = {});

// The same with the test split alone (`train` left empty), for evaluation.
Dataset load_test_set(const std::filesystem::path& dir, int64_t limit = 0, const DataOptions& options = {});

// Whether `dir` holds image folders rather than IDX or CIFAR files (their labels are their
// class names' places, so the names must match a model's).
bool is_image_folder_dataset(const std::filesystem::path& dir, const DataOptions& options = {});

// Class names, one a line (a trailing empty line or CR is ignored); an Error naming the file
// for an empty name or no names.
std::vector<std::string> read_class_names(const std::filesystem::path& file);

// "HxW" as two sizes of 1 to kMaxImageSide; an Error naming `source` otherwise.
inline constexpr int64_t kMaxImageSide = 4096;
std::pair<int64_t, int64_t> parse_image_size(const std::string& text, const std::string& source);

// uint8 images [N, C, H, W] with `channels` channels: colour to grey by PIL's convert("L")
// rule, grey to RGB by repeating it.
torch::Tensor convert_channels(const torch::Tensor& images, int64_t channels);

// uint8 images [N, C, H, W] resized to height x width as torchvision's Resize((h, w)) resizes
// tensors (bilinear, antialiased), rounded to the nearest level.
torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width);

// Loads one IDX images/labels pair (kTrainFiles or kTestFiles) and checks they agree.
Split load_split(const std::filesystem::path& dir, IdxStems stems, int64_t limit = 0);

// The splits' images and labels one after another.
Split concatenate(const std::vector<Split>& parts);

// The first `n` images and labels of `split`.
Split first(const Split& split, int64_t n);

// A 64-bit hash of every image and label (training, validation, test) and of the class names:
// how the processes of a distributed run check that they read the same data.
uint64_t fingerprint(const Dataset& d);

}  // namespace convkit::data
