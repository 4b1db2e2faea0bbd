#include "util/runtime.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <thread>

#include "util/error.h"

namespace convkit {

void pin_blas_to_one_thread() {
  using SetThreads = void (*)(int);
  for (const char* symbol : {"openblas_set_num_threads", "goto_set_num_threads"}) {
    if (auto fn = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, symbol))) {
      fn(1);
      break;
    }
  }
}

int thread_budget(int requested) {
  return requested > 0 ? requested : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int configure_threads(int requested) {
  const int threads = thread_budget(requested);
  // LibTorch parallelises over the batch itself; OpenBLAS spawning its own threads inside
  // each of those calls doubles the runnable threads and more than halves throughput.
  pin_blas_to_one_thread();
  torch::set_num_threads(threads);
  static bool interop_set = false;  // LibTorch allows this once per process
  if (!interop_set) {
    interop_set = true;
    try {
      torch::set_num_interop_threads(1);
    } catch (const std::exception&) {
    }
  }
  return threads;
}

std::string resolve_device(const std::string& requested) {
  const bool has_cuda = torch::cuda::is_available();
  if (requested == "auto") return has_cuda ? "cuda" : "cpu";
  if (requested == "cpu") return "cpu";
  if (requested == "cuda") {
    if (!has_cuda) throw Error("--device cuda: no CUDA device available to this LibTorch build");
    return "cuda";
  }
  throw Error("--device: unknown device '" + requested + "' (use auto, cpu or cuda)");
}

}  // namespace convkit
