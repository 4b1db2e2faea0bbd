#include "data/dataset.h"

#include <torch/torch.h>

#include <fstream>

#include "data/idx.h"
#include "data/image_folder.h"
#include "util/error.h"
#include "util/files.h"

namespace convkit::data {
namespace {

namespace fs = std::filesystem;

// FNV-1a of FashionMNIST's 10,000 test labels: how its IDX files are told from MNIST's and others'.
constexpr uint64_t kFashionMnistTestLabelsHash = 0x25bdf8123f06fac3;

uint64_t fnv1a(const torch::Tensor& labels) {
  uint64_t h = 0xcbf29ce484222325;
  const int64_t* l = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) h = (h ^ static_cast<uint64_t>(l[i])) * 0x100000001b3;
  return h;
}

// The labels' reach: one more than the largest label of either split, so that a class the
// training images happen to lack still has its output.
int64_t class_count_of(const torch::Tensor& train_labels, const torch::Tensor& test_labels) {
  int64_t count = 0;
  for (const auto& labels : {train_labels, test_labels})
    if (labels.defined() && labels.numel() > 0) count = std::max(count, labels.max().item<int64_t>() + 1);
  return count;
}

std::vector<std::string> read_class_names(const fs::path& file) {
  const std::vector<uint8_t> bytes = read_file_bytes(file, uint64_t{1} << 20);
  std::vector<std::string> names;
  std::string line;
  for (const uint8_t b : bytes) {
    if (b == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      names.push_back(line);
      line.clear();
    } else {
      line.push_back(static_cast<char>(b));
    }
  }
  if (!line.empty()) names.push_back(line);
  if (names.empty()) throw file_error(file.string(), "has no class names (one a line)");
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) throw file_error(file.string(), "line " + std::to_string(i + 1) + " has no class name");
  return names;
}

// The names of an IDX dataset's classes, `count` of them at least (the labels' reach).
std::vector<std::string> idx_class_names(const fs::path& dir, int64_t count, const torch::Tensor& full_test_labels) {
  if (fs::exists(dir / "classes.txt")) {
    std::vector<std::string> names = read_class_names(dir / "classes.txt");
    if (static_cast<int64_t>(names.size()) < count)
      throw file_error(
          (dir / "classes.txt").string(),
          "has " + std::to_string(names.size()) + " class names, but the labels go up to " + std::to_string(count - 1));
    return names;
  }
  if (count <= kNumClasses && full_test_labels.numel() == 10000 &&
      fnv1a(full_test_labels) == kFashionMnistTestLabelsHash)
    return class_names();
  std::vector<std::string> digits;
  for (int64_t k = 0; k < count; ++k) digits.push_back(std::to_string(k));
  return digits;
}

bool has_idx_file(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  return fs::exists(dir / stem, ec) || fs::exists(dir / (stem + ".gz"), ec);
}

torch::Tensor read_labels(const fs::path& file) {
  IdxArray labels = read_idx(file, kIdxLabelsMagic);
  return torch::from_blob(labels.bytes.data(), {labels.dims[0]}, torch::kUInt8).to(torch::kInt64);
}

Dataset load_idx_dataset(const fs::path& dir, int64_t limit, bool with_train) {
  Dataset d;
  const Split test = load_split(dir, kTestFiles);
  // The labels set the class count; evaluation reads the training labels only, and can do
  // without them (a folder holding just the test files).
  torch::Tensor train_labels;
  if (with_train) {
    d.train = load_split(dir, kTrainFiles);
    train_labels = d.train.labels;
  } else if (has_idx_file(dir, kTrainFiles.labels)) {
    train_labels = read_labels(find_idx_file(dir, kTrainFiles.labels));
  }
  d.classes = idx_class_names(dir, class_count_of(train_labels, test.labels), test.labels);
  if (with_train && limit > 0) d.train = first(d.train, limit);
  d.test = limit > 0 ? first(test, limit) : test;
  return d;
}

void note_skipped(const DecodedFolder& decoded, const char* split, Dataset& d) {
  if (decoded.skipped == 0) return;
  d.skipped += (d.skipped.empty() ? "Skipped " : "; ") + std::to_string(decoded.skipped) + " " + split +
               " image files that cannot be decoded (the first: " + decoded.first_skipped + ")";
}

Dataset load_folder_dataset(const fs::path& dir, int64_t limit, bool with_train, FolderOptions folders) {
  Dataset d;
  const ImageFolderListing train = list_image_folder(dir / "train");
  d.classes = train.classes;
  if (!fs::is_directory(dir / "test"))
    throw file_error((dir / "test").string(), "is missing: image folders need train/<class>/ and test/<class>/");
  const ImageFolderListing test = list_image_folder(dir / "test", &d.classes);
  if (with_train) {
    const DecodedFolder decoded = decode_image_folder(train, limit, folders);
    d.train = decoded.split;
    note_skipped(decoded, "training", d);
  }
  const DecodedFolder decoded = decode_image_folder(test, limit, folders);
  d.test = decoded.split;
  note_skipped(decoded, "test", d);
  return d;
}

}  // namespace

std::vector<std::string> class_names() { return {kClassNames.begin(), kClassNames.end()}; }

bool is_image_folder_dataset(const fs::path& dir) {
  std::error_code ec;
  return fs::is_directory(dir / "train", ec) && !has_idx_file(dir, kTrainFiles.images);
}

namespace {

Dataset load(const fs::path& dir, int64_t limit, bool with_train, FolderOptions folders) {
  if (is_image_folder_dataset(dir)) return load_folder_dataset(dir, limit, with_train, folders);
  std::error_code ec;
  if (fs::is_directory(dir, ec) && !has_idx_file(dir, kTrainFiles.images) && !has_idx_file(dir, kTestFiles.images))
    throw file_error(dir.string(), std::string("holds neither IDX files (") + kTrainFiles.images + "[.gz], " +
                                       kTestFiles.images +
                                       "[.gz], ...) nor image folders (train/<class>/, test/<class>/)");
  return load_idx_dataset(dir, limit, with_train);
}

}  // namespace

Dataset load_dataset(const fs::path& dir, int64_t limit, FolderOptions folders) {
  return load(dir, limit, true, folders);
}

Dataset load_test_set(const fs::path& dir, int64_t limit, FolderOptions folders) {
  return load(dir, limit, false, folders);
}

Split load_split(const fs::path& dir, IdxStems stems, int64_t limit) {
  const auto images_file = find_idx_file(dir, stems.images);
  const auto labels_file = find_idx_file(dir, stems.labels);
  IdxArray images = read_idx(images_file, kIdxImagesMagic);
  IdxArray labels = read_idx(labels_file, kIdxLabelsMagic);

  if (images.dims[1] != kImageSize || images.dims[2] != kImageSize) {
    throw file_error(images_file.string(), "images are " + std::to_string(images.dims[1]) + "x" +
                                               std::to_string(images.dims[2]) + ", expected 28x28");
  }
  if (images.dims[0] != labels.dims[0]) {
    throw file_error(labels_file.string(), "has " + std::to_string(labels.dims[0]) + " labels but " +
                                               images_file.filename().string() + " has " +
                                               std::to_string(images.dims[0]) + " images");
  }

  const int64_t n = limit > 0 ? std::min(images.dims[0], limit) : images.dims[0];
  Split split;
  split.images = torch::from_blob(images.bytes.data(), {images.dims[0], kImageSize, kImageSize}, torch::kUInt8)
                     .slice(0, 0, n)
                     .clone();
  split.labels =
      torch::from_blob(labels.bytes.data(), {labels.dims[0]}, torch::kUInt8).slice(0, 0, n).to(torch::kInt64);
  return split;
}

Split first(const Split& split, int64_t n) {
  n = std::min(n, split.images.size(0));
  return {split.images.slice(0, 0, n), split.labels.slice(0, 0, n)};
}

}  // namespace convkit::data
