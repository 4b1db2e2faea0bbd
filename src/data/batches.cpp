#include "data/batches.h"

#include <sys/mman.h>
#include <torch/torch.h>

#include <cstdlib>
#include <cstring>

namespace convkit::data {

torch::Tensor gather_rows(const torch::Tensor& source, const torch::Tensor& index) {
  if (!source.device().is_cpu() || !source.is_contiguous() || source.dim() == 0 ||
      index.scalar_type() != torch::kLong || !index.is_contiguous())
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

// Training reads random 3 KB rows of the whole training tensor. With 4 KB pages nearly every
// row costs a TLB miss and a page walk (which a virtual machine doubles); on 2 MB pages a
// batch gathers markedly faster. Tensors this large are therefore allocated 2 MB-aligned and
// offered to the kernel's transparent huge pages (a hint; without them nothing changes).
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugePagesFrom = size_t{32} << 20;

}  // namespace

torch::Tensor empty_floats(at::IntArrayRef sizes) {
  const size_t bytes = static_cast<size_t>(c10::multiply_integers(sizes)) * sizeof(float);
  if (bytes < kHugePagesFrom) return torch::empty(sizes, torch::kFloat);
  const size_t rounded = (bytes + kHugePage - 1) / kHugePage * kHugePage;
  void* memory = std::aligned_alloc(kHugePage, rounded);
  if (memory == nullptr) return torch::empty(sizes, torch::kFloat);
#ifdef MADV_HUGEPAGE
  madvise(memory, rounded, MADV_HUGEPAGE);
#endif
  return torch::from_blob(
      memory, sizes, [](void* p) { std::free(p); }, torch::kFloat);
}

}  // namespace convkit::data
