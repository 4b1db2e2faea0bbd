#include "train/fused_adam.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <xmmintrin.h>

#include <algorithm>
#include <cmath>

#include "train/flat_parameters.h"

namespace convkit::train {
namespace {

// One Adam step over n elements, in the order of torch::optim::Adam's ops:
//   g += weight_decay * p;  m = m * beta1 + (1 - beta1) * g;  v = v * beta2 + (1 - beta2) * g * g
//   p += -step_size * m / (sqrt(v) / sqrt(bias_correction2) + eps)
// except that sqrt(v) is multiplied by 1 / sqrt(bias_correction2): one division fewer per
// element (the step is bound by the divider), at most an ulp of the denominator apart.
struct AdamCoefficients {
  float beta1, one_minus_beta1, beta2, one_minus_beta2, weight_decay, inverse_sqrt_bias_correction2, eps,
      minus_step_size;
};

// Elements per block: the gradient is summed from its parts into a block on the stack, then
// the block is updated; both loops vectorise.
constexpr int64_t kBlock = 512;

// A parameter whose gradient stays zero (a dead ReLU unit's weights) has moments that decay
// geometrically through the subnormal range, where each multiply takes a microcode assist of
// ~100 cycles: at batch 16 that made the step 3x slower. Subnormals are flushed to zero inside
// this pass only, which moves no parameter by more than lr * 1e-38 / eps = 1e-33.
class FlushSubnormals {
 public:
  FlushSubnormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFlushToZero | kDenormalsAreZero); }
  ~FlushSubnormals() { _mm_setcsr(saved_); }
  FlushSubnormals(const FlushSubnormals&) = delete;
  FlushSubnormals& operator=(const FlushSubnormals&) = delete;

 private:
  static constexpr unsigned kFlushToZero = 0x8000, kDenormalsAreZero = 0x0040;
  unsigned saved_;
};

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void adam_update(
    const AdamCoefficients& c, float* __restrict p, const float* __restrict grad, const float* const* parts,
    int64_t part_count, float* __restrict m, float* __restrict v, int64_t offset, int64_t n) {
  float g[kBlock];
  for (int64_t start = offset; start < offset + n; start += kBlock) {
    const int64_t len = std::min(kBlock, offset + n - start);
    for (int64_t i = 0; i < len; ++i) g[i] = grad[start + i];
    for (int64_t k = 0; k < part_count; ++k)
      for (int64_t i = 0; i < len; ++i) g[i] += parts[k][start + i];
    if (c.weight_decay != 0)
      for (int64_t i = 0; i < len; ++i) g[i] += c.weight_decay * p[start + i];
    float* __restrict pb = p + start;
    float* __restrict mb = m + start;
    float* __restrict vb = v + start;
    for (int64_t i = 0; i < len; ++i) {
      const float m_i = mb[i] * c.beta1 + c.one_minus_beta1 * g[i];
      const float v_i = vb[i] * c.beta2 + c.one_minus_beta2 * g[i] * g[i];
      mb[i] = m_i;
      vb[i] = v_i;
      pb[i] = pb[i] + c.minus_step_size * m_i / (std::sqrt(v_i) * c.inverse_sqrt_bias_correction2 + c.eps);
    }
  }
}

bool fusable(const torch::Tensor& p, const torch::optim::AdamOptions& options) {
  return !options.amsgrad() && p.device().is_cpu() && p.scalar_type() == torch::kFloat && p.is_contiguous() &&
         p.grad().is_contiguous() && p.grad().layout() == torch::kStrided && p.grad().scalar_type() == torch::kFloat;
}

}  // namespace

bool FusedAdam::set_gradient_parts(const torch::Tensor& gradient, const std::vector<torch::Tensor>& parts) {
  parts_.clear();
  if (!gradient.defined() || parts.empty()) return false;
  for (const auto& part : parts) {
    if (!part.is_contiguous() || !part.device().is_cpu() || part.scalar_type() != torch::kFloat ||
        part.numel() != gradient.numel())
      return false;
  }
  for (auto& group : param_groups()) {
    for (auto& p : group.params()) {
      if (!p.grad().defined() || !p.grad().is_same(gradient)) continue;
      if (!fusable(p, static_cast<torch::optim::AdamOptions&>(group.options()))) return false;
      parts_[p.unsafeGetTensorImpl()] = parts;
      return true;
    }
  }
  return false;
}

torch::Tensor FusedAdam::step(LossClosure closure) {
  bool all_fusable = true;
  for (auto& group : param_groups())
    for (auto& p : group.params())
      if (p.grad().defined() && !fusable(p, static_cast<torch::optim::AdamOptions&>(group.options())))
        all_fusable = false;
  if (!all_fusable) {
    TORCH_CHECK(parts_.empty(), "FusedAdam: gradient parts need parameters the fused step takes");
    return Adam::step(std::move(closure));
  }
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    const auto& options = static_cast<torch::optim::AdamOptions&>(group.options());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      // State kept under the key and in the form torch::optim::Adam uses.
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());
      if (state_.find(key) == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamParamState>();
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state_[key] = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamParamState&>(*state_[key]);
      state.step(state.step() + 1);
      const auto [beta1, beta2] = options.betas();
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const AdamCoefficients c{static_cast<float>(beta1),
                               static_cast<float>(1 - beta1),
                               static_cast<float>(beta2),
                               static_cast<float>(1 - beta2),
                               static_cast<float>(options.weight_decay()),
                               static_cast<float>(1 / std::sqrt(bias_correction2)),
                               static_cast<float>(options.eps()),
                               static_cast<float>(-options.lr() / bias_correction1)};
      std::vector<const float*> parts;
      if (auto it = parts_.find(p.unsafeGetTensorImpl()); it != parts_.end())
        for (const auto& part : it->second) parts.push_back(part.data_ptr<float>());
      float* values = p.data_ptr<float>();
      const float* grad = p.grad().data_ptr<float>();
      float* m = state.exp_avg().data_ptr<float>();
      float* v = state.exp_avg_sq().data_ptr<float>();
      at::parallel_for(0, p.numel(), kFlatGrain, [&](int64_t begin, int64_t end) {
        const FlushSubnormals flush;
        adam_update(c, values, grad, parts.data(), static_cast<int64_t>(parts.size()), m, v, begin, end - begin);
      });
    }
  }
  return loss;
}

}  // namespace convkit::train
