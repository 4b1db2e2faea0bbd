#include "train/pytorch_random.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <mutex>

namespace convkit::train {

void draw_loader_base_seed() { torch::empty({}, torch::kInt64).random_(); }

torch::Tensor random_sampler_order(int64_t n) {
  const int64_t seed = torch::empty({}, torch::kInt64).random_().item<int64_t>();
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
  return torch::randperm(n, generator, torch::kInt64);
}

torch::Tensor global_generator_state() {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  return generator.get_state();
}

void set_global_generator_state(const torch::Tensor& state) {
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(state);
}

torch::Tensor generator_state_for_seed(uint64_t seed) {
  at::Generator generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  return generator.get_state();
}

}  // namespace convkit::train
