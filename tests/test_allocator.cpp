// The heap policy (util/allocator.h) must keep applying: a training step of a CNN with large
// activations faults in fresh pages every step under glibc's defaults, and almost none under
// the policy. Counting page faults with getrusage makes a silent loss of the policy fail here.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <torch/torch.h>

#include "models/registry.h"
#include "util/allocator.h"

using namespace convkit;

namespace {

long minor_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

// Page faults per training step of the competition network's first block, after warm-up steps.
double faults_per_step() {
  torch::manual_seed(1);
  auto model = models::make_model("c32k3p1bn-mp2-c64k3p1bn-mp2-fc64");
  torch::optim::SGD optimizer(model->parameters(), 0.01);
  const torch::Tensor x = torch::randn({128, 1, 28, 28});
  const torch::Tensor y = torch::randint(0, 10, {128});
  auto step = [&] {
    optimizer.zero_grad();
    torch::nn::functional::cross_entropy(model->forward(x).logits, y).backward();
    optimizer.step();
  };
  for (int i = 0; i < 2; ++i) step();
  const long before = minor_faults();
  constexpr int kSteps = 4;
  for (int i = 0; i < kSteps; ++i) step();
  return static_cast<double>(minor_faults() - before) / kSteps;
}

// AddressSanitizer replaces glibc's malloc, so mallopt has no heap to configure there.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kGlibcHeap = false;
#elif defined(__has_feature)
constexpr bool kGlibcHeap = !__has_feature(address_sanitizer);
#else
constexpr bool kGlibcHeap = true;
#endif

#define SKIP_WITHOUT_GLIBC_HEAP() \
  if (!kGlibcHeap) GTEST_SKIP() << "built with AddressSanitizer, whose allocator ignores mallopt"

}  // namespace

TEST(Allocator, PolicyStopsPageFaultsPerStep) {
  SKIP_WITHOUT_GLIBC_HEAP();
  restore_default_allocator();
  const double by_default = faults_per_step();
  ASSERT_TRUE(configure_allocator()) << "mallopt refused the policy";
  const double with_policy = faults_per_step();
  std::printf("page faults per step: %.0f with glibc's defaults, %.0f with convkit's policy\n", by_default,
              with_policy);
  // A 12.8 MB activation is 3,125 pages: glibc's defaults fault in thousands every step.
  EXPECT_GT(by_default, 1000);
  EXPECT_LT(with_policy * 20, by_default);
}

TEST(Allocator, EnvironmentCanTurnThePolicyOff) {
  SKIP_WITHOUT_GLIBC_HEAP();
  setenv("CONVKIT_MALLOC", "default", 1);
  EXPECT_FALSE(configure_allocator());
  unsetenv("CONVKIT_MALLOC");
  EXPECT_TRUE(configure_allocator());
}
