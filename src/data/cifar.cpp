#include "data/cifar.h"

#include <torch/torch.h>

#include <cstring>

#include "util/error.h"
#include "util/files.h"

namespace convkit::data {
namespace {

namespace fs = std::filesystem;

// One CIFAR file holds 10,000 (CIFAR-10) or 50,000 (CIFAR-100) records of 3 KB: this admits
// sets many times larger while refusing a file that could never be one.
constexpr uint64_t kMaxCifarFileBytes = uint64_t{2} << 30;

bool file_exists(const fs::path& file) {
  std::error_code ec;
  return fs::exists(file, ec);
}

bool is_cifar100(const fs::path& dir) {
  return file_exists(dir / kCifar100TrainFile) || file_exists(dir / kCifar100TestFile);
}

fs::path cifar10_train_file(const fs::path& dir, int batch) {
  return dir / ("data_batch_" + std::to_string(batch) + ".bin");
}

Split read_records(const fs::path& file, int label_bytes, int label_index, int64_t classes) {
  return parse_cifar_records(read_file_bytes(file, kMaxCifarFileBytes), file.string(), label_bytes, label_index,
                             classes);
}

}  // namespace

bool is_cifar_dataset(const fs::path& dir) {
  return file_exists(dir / kCifar10TestFile) || file_exists(cifar10_train_file(dir, 1)) || is_cifar100(dir);
}

Split parse_cifar_records(const std::vector<uint8_t>& bytes, const std::string& name, int label_bytes, int label_index,
                          int64_t classes) {
  const auto record = static_cast<size_t>(label_bytes + kCifarPixels);
  if (bytes.empty()) throw file_error(name, "is empty (CIFAR records expected)");
  if (bytes.size() % record != 0)
    throw file_error(name, "has " + std::to_string(bytes.size()) + " bytes, not a whole number of " +
                               std::to_string(record) + "-byte CIFAR records (truncated?)");
  const auto n = static_cast<int64_t>(bytes.size() / record);
  Split split{torch::empty({n, kCifarChannels, kCifarSide, kCifarSide}, torch::kUInt8),
              torch::empty({n}, torch::kInt64)};
  uint8_t* images = split.images.data_ptr<uint8_t>();
  int64_t* labels = split.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* r = bytes.data() + i * record;
    labels[i] = r[label_index];
    if (labels[i] >= classes)
      throw file_error(name, "label " + std::to_string(labels[i]) + " of record " + std::to_string(i) +
                                 " is beyond the " + std::to_string(classes) + " class names");
    std::memcpy(images + i * kCifarPixels, r + label_bytes, kCifarPixels);
  }
  return split;
}

Dataset load_cifar(const fs::path& dir, int64_t limit, bool with_train, CifarLabel label) {
  Dataset d;
  const bool hundred = is_cifar100(dir);
  const int label_bytes = hundred ? 2 : 1;
  const int label_index = hundred && label == CifarLabel::Fine ? 1 : 0;
  d.classes = read_class_names(dir / (!hundred                    ? kCifar10NamesFile
                                      : label == CifarLabel::Fine ? "fine_label_names.txt"
                                                                  : "coarse_label_names.txt"));
  const auto classes = static_cast<int64_t>(d.classes.size());
  const auto read = [&](const fs::path& file) { return read_records(file, label_bytes, label_index, classes); };
  if (with_train) {
    if (hundred) {
      d.train = read(dir / kCifar100TrainFile);
    } else {
      std::vector<Split> batches;
      for (int b = 1; b <= kCifar10TrainBatches; ++b) batches.push_back(read(cifar10_train_file(dir, b)));
      d.train = concatenate(batches);
    }
    if (limit > 0) d.train = first(d.train, limit);
  }
  d.test = read(dir / (hundred ? kCifar100TestFile : kCifar10TestFile));
  if (limit > 0) d.test = first(d.test, limit);
  return d;
}

}  // namespace convkit::data
