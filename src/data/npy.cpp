#include "data/npy.h"

#include <torch/torch.h>

#include "util/error.h"
#include "util/files.h"

namespace convkit::data {

void write_npy(const std::filesystem::path& file, const torch::Tensor& array) {
  const char* descr = array.scalar_type() == torch::kFloat  ? "<f4"
                      : array.scalar_type() == torch::kLong ? "<i8"
                                                            : nullptr;
  if (!descr) throw file_error(file.string(), "only float32 and int64 arrays are written as .npy");
  const torch::Tensor a = array.to(torch::kCPU).contiguous();
  std::string shape;  // Python's tuple: (), (3,), (3, 4)
  for (int64_t i = 0; i < a.dim(); ++i) shape += (i ? ", " : "") + std::to_string(a.size(i));
  if (a.dim() == 1) shape += ",";
  std::string header = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (" + shape + "), }";
  // The magic, version and header length take 10 bytes; the header is padded to 64 bytes.
  header.append(63 - (10 + header.size()) % 64, ' ');
  header += '\n';
  std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
  bytes += static_cast<char>(header.size() & 0xff);
  bytes += static_cast<char>(header.size() >> 8);
  bytes += header;
  bytes.append(static_cast<const char*>(a.data_ptr()), a.numel() * a.element_size());
  write_file_atomically(file, bytes);
}

}  // namespace convkit::data
