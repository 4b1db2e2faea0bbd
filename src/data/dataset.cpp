#include "data/dataset.h"

#include <sys/mman.h>

#include <cstdlib>
#include <cstring>

#include "data/idx.h"
#include "util/error.h"

namespace convkit::data {

Split load_split(const std::filesystem::path& dir, const std::string& images_stem,
                 const std::string& labels_stem, int64_t limit) {
  const auto images_file = find_idx_file(dir, images_stem);
  const auto labels_file = find_idx_file(dir, labels_stem);
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

  int64_t n = images.dims[0];
  if (limit > 0) n = std::min(n, limit);
  Split split;
  split.images = torch::from_blob(images.bytes.data(), {images.dims[0], kImageSize, kImageSize}, torch::kUInt8)
                     .slice(0, 0, n)
                     .clone();
  split.labels = torch::from_blob(labels.bytes.data(), {labels.dims[0]}, torch::kUInt8)
                     .slice(0, 0, n)
                     .to(torch::kInt64);
  return split;
}

Mnist load_mnist(const std::filesystem::path& dir, int64_t limit) {
  return {load_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte", limit),
          load_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", limit)};
}

Normalization normalization_from(const torch::Tensor& train_images) {
  const torch::Tensor pixels = train_images.to(torch::kFloat);
  return {(pixels.mean() / 255).item<float>(), (pixels.std() / 255).item<float>()};
}

torch::Tensor gather_rows(const torch::Tensor& source, const torch::Tensor& index) {
  if (!source.device().is_cpu() || !source.is_contiguous() || source.dim() == 0 || index.scalar_type() != torch::kLong ||
      !index.is_contiguous())
    return source.index_select(0, index);
  std::vector<int64_t> sizes = source.sizes().vec();
  sizes[0] = index.numel();
  torch::Tensor out = torch::empty(sizes, source.options());
  const int64_t rows = source.size(0);
  const size_t row_bytes = static_cast<size_t>(source.stride(0)) * source.element_size();
  const auto* from = static_cast<const char*>(source.data_ptr());
  auto* to = static_cast<char*>(out.data_ptr());
  const int64_t* at = index.data_ptr<int64_t>();
  for (int64_t i = 0; i < index.numel(); ++i) {
    TORCH_CHECK(at[i] >= 0 && at[i] < rows, "gather_rows: index ", at[i], " out of range for ", rows, " rows");
    std::memcpy(to + i * row_bytes, from + at[i] * row_bytes, row_bytes);
  }
  return out;
}

namespace {

// Training reads random 3 KB rows of a ~190 MB tensor. With 4 KB pages nearly every row costs
// a TLB miss and a page walk (which a virtual machine doubles): gathering a batch of 64 took
// 67-198 us, 48 us on 2 MB pages. Tensors this large are therefore allocated 2 MB-aligned and
// offered to the kernel's transparent huge pages (a hint; without them nothing changes).
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugePagesFrom = size_t{32} << 20;

torch::Tensor empty_float(at::IntArrayRef sizes) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * sizeof(float);
  if (bytes < kHugePagesFrom) return torch::empty(sizes, torch::kFloat);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* memory = std::aligned_alloc(kHugePage, rounded);
  if (memory == nullptr) return torch::empty(sizes, torch::kFloat);
#ifdef MADV_HUGEPAGE
  madvise(memory, rounded, MADV_HUGEPAGE);
#endif
  return torch::from_blob(memory, sizes, [](void* p) { std::free(p); }, torch::kFloat);
}

}  // namespace

torch::Tensor to_model_input(const torch::Tensor& pixels, Normalization norm) {
  torch::Tensor x = pixels.dim() == 3 ? pixels.unsqueeze(1) : pixels;
  // Same ops, same order, same dtypes as torchvision's ToTensor().div(255) then Normalize's
  // sub_(mean).div_(std) with one-element float tensors, so the values are bit-identical.
  const auto mean = torch::tensor({norm.mean}).view({-1, 1, 1});
  const auto std = torch::tensor({norm.std}).view({-1, 1, 1});
  // In place after the conversion into a new tensor: the same arithmetic without a second
  // full-size temporary, and the caller's (float) pixels are never modified.
  torch::Tensor out = empty_float(x.sizes()).copy_(x);
  return out.div_(255).sub_(mean).div_(std);
}

TrainValidIndices random_split(int64_t n) {
  const auto n_train = static_cast<int64_t>(static_cast<double>(n) * kTrainFraction);
  const torch::Tensor perm = torch::randperm(n, torch::kInt64);
  return {perm.slice(0, 0, n_train), perm.slice(0, n_train, n)};
}

}  // namespace convkit::data
