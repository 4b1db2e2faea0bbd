// CIFAR-10 and CIFAR-100 in their binary form, as the official archives unpack them
// (cifar-10-batches-bin/, cifar-100-binary/): records of label byte(s) then 3x32x32 pixels,
// the red plane, then green, then blue, each row-major.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace convkit::data {

inline constexpr int64_t kCifarSide = 32, kCifarChannels = 3;
inline constexpr int64_t kCifarPixels = kCifarChannels * kCifarSide * kCifarSide;

// CIFAR-10: data_batch_1.bin ... data_batch_5.bin, test_batch.bin, batches.meta.txt.
inline constexpr const char* kCifar10TestFile = "test_batch.bin";
inline constexpr const char* kCifar10NamesFile = "batches.meta.txt";
inline constexpr int kCifar10TrainBatches = 5;
// CIFAR-100: train.bin, test.bin, fine_label_names.txt, coarse_label_names.txt.
inline constexpr const char* kCifar100TrainFile = "train.bin";
inline constexpr const char* kCifar100TestFile = "test.bin";

// Which of CIFAR-100's two labels a record is read with (CIFAR-10 has one).
enum class CifarLabel { Fine, Coarse };

// Whether `dir` holds CIFAR-10's or CIFAR-100's binary files.
bool is_cifar_dataset(const std::filesystem::path& dir);

// The records of one CIFAR file: `label_bytes` (1 for CIFAR-10, 2 for CIFAR-100) then the
// pixels; the label is byte `label_index` of them. Images uint8 [N, 3, 32, 32], labels int64.
// An Error naming `name` for an empty file, a length that is not a whole number of records, or
// a label outside 0..classes-1.
Split parse_cifar_records(const std::vector<uint8_t>& bytes, const std::string& name, int label_bytes, int label_index,
                          int64_t classes);

// The dataset in `dir` (CIFAR-10 or CIFAR-100), the first `limit` images of each split when
// `limit` > 0, the training files only when `with_train`. Class names from the names file.
Dataset load_cifar(const std::filesystem::path& dir, int64_t limit, bool with_train, CifarLabel label);

}  // namespace convkit::data
