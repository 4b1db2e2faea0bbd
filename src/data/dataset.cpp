#include "data/dataset.h"

#include <torch/torch.h>

#include "data/idx.h"
#include "util/error.h"

namespace convkit::data {

std::vector<std::string> class_names() { return {kClassNames.begin(), kClassNames.end()}; }

Split load_split(const std::filesystem::path& dir, IdxStems stems, int64_t limit) {
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
  for (size_t i = 0; i < labels.bytes.size(); ++i) {
    if (labels.bytes[i] >= kNumClasses) {
      throw file_error(labels_file.string(), "label " + std::to_string(labels.bytes[i]) + " at index " +
                                                 std::to_string(i) + " is outside 0-9");
    }
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

Mnist load_mnist(const std::filesystem::path& dir, int64_t limit) {
  return {load_split(dir, kTrainFiles, limit), load_split(dir, kTestFiles, limit)};
}

Split first(const Split& split, int64_t n) {
  n = std::min(n, split.images.size(0));
  return {split.images.slice(0, 0, n), split.labels.slice(0, 0, n)};
}

}  // namespace convkit::data
