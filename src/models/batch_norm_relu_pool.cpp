#include "models/batch_norm_relu_pool.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "models/cpu_dispatch.h"

namespace convkit::models {
namespace {

using torch::Tensor;

constexpr uint8_t kNoGradient = 255;  // the window's maximum did not pass the ReLU
// Independent partial sums per plane (one AVX-512 register): a plane's sum in float stays
// accurate, and the planes are added in double.
constexpr int kLanes = 16;

// Channel c of image n is the plane starting at (n * channels + c) * height * width; every
// kernel below works on one channel, so channels run on threads independently and each
// channel's sums are added in the same order whatever the thread count.
struct Layout {
  int64_t images, channels, height, width;
  bool pool;
  int64_t plane() const { return height * width; }
  int64_t out_height() const { return pool ? height / 2 : height; }
  int64_t out_width() const { return pool ? width / 2 : width; }
  int64_t out_plane() const { return out_height() * out_width(); }
  int64_t per_channel() const { return images * plane(); }
  int64_t in_at(int64_t n, int64_t c) const { return (n * channels + c) * plane(); }
  int64_t out_at(int64_t n, int64_t c) const { return (n * channels + c) * out_plane(); }
  // Where window (p, q) of a pooled plane took its maximum.
  int64_t winner_at(int64_t p, int64_t q, uint8_t winner) const {
    return (2 * p + winner / 2) * width + 2 * q + winner % 2;
  }
};

Layout layout_of(const Tensor& x, bool pool) { return {x.size(0), x.size(1), x.size(2), x.size(3), pool}; }

// One channel's batch norm in its affine form, y = scale * x + shift.
struct ChannelNorm {
  float mean, invstd, scale, shift;
};

ChannelNorm channel_norm(const float* mean, const float* invstd, const float* weight, const float* bias, int64_t c) {
  const float scale = weight[c] * invstd[c];
  return {mean[c], invstd[c], scale, bias[c] - mean[c] * scale};
}

CONVKIT_INLINE float plane_sum(const float* p, int64_t length) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= length; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += p[i + j];
  float sum = 0;
  for (; i < length; ++i) sum += p[i];
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

CONVKIT_INLINE float plane_squared_deviation(const float* p, int64_t length, float centre) {
  float lanes[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= length; i += kLanes)
    for (int j = 0; j < kLanes; ++j) lanes[j] += (p[i + j] - centre) * (p[i + j] - centre);
  float sum = 0;
  for (; i < length; ++i) sum += (p[i] - centre) * (p[i] - centre);
  for (int j = 0; j < kLanes; ++j) sum += lanes[j];
  return sum;
}

// The channel's mean and biased variance over the batch (two passes: the squares are taken
// about the mean, so no cancellation).
CONVKIT_CLONES std::pair<double, double> channel_moments(const float* x, const Layout& l, int64_t c) {
  double sum = 0;
  for (int64_t n = 0; n < l.images; ++n) sum += plane_sum(x + l.in_at(n, c), l.plane());
  const double mean = sum / static_cast<double>(l.per_channel());
  double squares = 0;
  for (int64_t n = 0; n < l.images; ++n)
    squares += plane_squared_deviation(x + l.in_at(n, c), l.plane(), static_cast<float>(mean));
  return {mean, squares / static_cast<double>(l.per_channel())};
}

// Eight floats: one AVX2 register (the baseline clone splits it in two SSE halves).
typedef float Vec __attribute__((vector_size(32)));
typedef float UnalignedVec __attribute__((vector_size(32), aligned(4)));
typedef int32_t IntVec __attribute__((vector_size(32)));
constexpr int64_t kWindows = 8;  // pooling windows per vector

CONVKIT_INLINE Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
// The even and the odd lanes of a:b, spelled for GCC and for clang (the sanitizer build).
CONVKIT_INLINE Vec evens(Vec a, Vec b) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
#else
  return __builtin_shuffle(a, b, IntVec{0, 2, 4, 6, 8, 10, 12, 14});
#endif
}
CONVKIT_INLINE Vec odds(Vec a, Vec b) {
#if defined(__clang__)
  return __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
#else
  return __builtin_shuffle(a, b, IntVec{1, 3, 5, 7, 9, 11, 13, 15});
#endif
}

// A plane's pooling windows as two flat arrays, the windows' top rows and their bottom rows
// (a last odd row or column dropped), padded to whole vectors: then every window's four values
// sit at the same lane of four vectors, whatever the plane's width.
struct WindowRows {
  std::vector<float> top, bottom;
};

CONVKIT_INLINE int64_t gather_window_rows(const float* plane, const Layout& l, WindowRows& rows) {
  const int64_t row = 2 * l.out_width();
  const int64_t windows = l.out_plane(), padded = (windows + kWindows - 1) / kWindows * kWindows;
  rows.top.resize(2 * padded), rows.bottom.resize(2 * padded);
  for (int64_t p = 0; p < l.out_height(); ++p) {
    std::copy(plane + 2 * p * l.width, plane + 2 * p * l.width + row, rows.top.data() + p * row);
    std::copy(plane + (2 * p + 1) * l.width, plane + (2 * p + 1) * l.width + row, rows.bottom.data() + p * row);
  }
  std::fill(rows.top.begin() + 2 * windows, rows.top.end(), 0.0f);
  std::fill(rows.bottom.begin() + 2 * windows, rows.bottom.end(), 0.0f);
  return padded;
}

// max_pool2d's scan order and tie rule (first maximum wins, NaN wins) over the normalised
// windows, then the ReLU; each winner's place in its window is kept for the backward pass.
// Without branches: which value wins is data-dependent and would mispredict.
CONVKIT_INLINE void pool_relu_plane(const float* plane, const Layout& l, const ChannelNorm& norm, WindowRows& rows,
                                    float* out, uint8_t* winners) {
  const int64_t padded = gather_window_rows(plane, l, rows), windows = l.out_plane();
  for (int64_t first = 0; first < padded; first += kWindows) {
    const float* top = rows.top.data() + 2 * first;
    const float* bottom = rows.bottom.data() + 2 * first;
    const Vec top_a = load(top), top_b = load(top + kWindows), bottom_a = load(bottom),
              bottom_b = load(bottom + kWindows);
    const Vec candidates[4] = {evens(top_a, top_b), odds(top_a, top_b), evens(bottom_a, bottom_b),
                               odds(bottom_a, bottom_b)};
    Vec best = norm.scale * candidates[0] + norm.shift;
    IntVec at = {};
    for (int i = 1; i < 4; ++i) {
      const Vec v = norm.scale * candidates[i] + norm.shift;
      const IntVec take = (v > best) | (v != v);
      best = take ? v : best;
      at = take ? IntVec{} + i : at;
    }
    const IntVec passes = best > 0;
    const Vec result = (passes | (best != best)) ? best : Vec{};
    const IntVec winner = passes ? at : IntVec{} + kNoGradient;
    for (int64_t j = 0; j < kWindows && first + j < windows; ++j) {
      out[first + j] = result[j];
      winners[first + j] = static_cast<uint8_t>(winner[j]);
    }
  }
}

CONVKIT_CLONES void forward_channel(const float* x, const Layout& l, int64_t c, const ChannelNorm& norm, float* out,
                                    uint8_t* winners) {
  thread_local WindowRows rows;
  for (int64_t n = 0; n < l.images; ++n) {
    const float* in = x + l.in_at(n, c);
    float* o = out + l.out_at(n, c);
    if (l.pool) {
      pool_relu_plane(in, l, norm, rows, o, winners + l.out_at(n, c));
      continue;
    }
    for (int64_t i = 0; i < l.plane(); ++i) {
      const float v = norm.scale * in[i] + norm.shift;
      o[i] = v > 0 || v != v ? v : 0.0f;
    }
  }
}

// The gradient's two per-channel sums: sum(dy) and sum(dy * (x - mean)), where dy is the
// gradient at the batch norm's output. Pooled, dy is non-zero only at the winners that passed the
// ReLU; otherwise where the output passed it.
CONVKIT_CLONES std::pair<double, double> gradient_sums(const float* x, const float* grad_out, const uint8_t* winners,
                                                       const float* out, const Layout& l, int64_t c, float mean) {
  double sum = 0, centred = 0;
  for (int64_t n = 0; n < l.images; ++n) {
    const float* in = x + l.in_at(n, c);
    const float* g = grad_out + l.out_at(n, c);
    if (l.pool) {
      const uint8_t* w = winners + l.out_at(n, c);
      float s = 0, sc = 0;
      for (int64_t p = 0, cell = 0; p < l.out_height(); ++p)
        for (int64_t q = 0; q < l.out_width(); ++q, ++cell) {
          const bool passed = w[cell] != kNoGradient;
          const float dy = passed ? g[cell] : 0.0f;
          s += dy;
          sc += dy * (in[l.winner_at(p, q, passed ? w[cell] : 0)] - mean);
        }
      sum += s, centred += sc;
      continue;
    }
    const float* y = out + l.out_at(n, c);
    float lanes[kLanes] = {}, centred_lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= l.plane(); i += kLanes)
      for (int j = 0; j < kLanes; ++j) {
        const float dy = y[i + j] > 0 ? g[i + j] : 0.0f;
        lanes[j] += dy;
        centred_lanes[j] += dy * (in[i + j] - mean);
      }
    for (; i < l.plane(); ++i) {
      const float dy = y[i] > 0 ? g[i] : 0.0f;
      sum += dy;
      centred += dy * (in[i] - mean);
    }
    for (int j = 0; j < kLanes; ++j) sum += lanes[j], centred += centred_lanes[j];
  }
  return {sum, centred};
}

// dx = scale * dy + slope * (x - mean) + offset: with batch statistics, slope and offset carry
// the gradient through the mean and variance; with running statistics both are 0.
CONVKIT_CLONES void input_gradient(const float* x, const float* grad_out, const uint8_t* winners, const float* out,
                                   const Layout& l, int64_t c, float mean, float scale, float slope, float offset,
                                   float* grad_x) {
  for (int64_t n = 0; n < l.images; ++n) {
    const float* in = x + l.in_at(n, c);
    const float* g = grad_out + l.out_at(n, c);
    float* gx = grad_x + l.in_at(n, c);
    if (l.pool) {
      for (int64_t i = 0; i < l.plane(); ++i) gx[i] = slope * (in[i] - mean) + offset;
      const uint8_t* w = winners + l.out_at(n, c);
      for (int64_t p = 0, cell = 0; p < l.out_height(); ++p)
        for (int64_t q = 0; q < l.out_width(); ++q, ++cell) {
          const bool passed = w[cell] != kNoGradient;  // without a branch, as in gradient_sums
          gx[l.winner_at(p, q, passed ? w[cell] : 0)] += passed ? scale * g[cell] : 0.0f;
        }
      continue;
    }
    const float* y = out + l.out_at(n, c);
    for (int64_t i = 0; i < l.plane(); ++i) gx[i] = slope * (in[i] - mean) + offset + (y[i] > 0 ? scale * g[i] : 0.0f);
  }
}

// The pooled (or full-size) output, and the winners when pooling.
std::pair<Tensor, Tensor> run_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& mean,
                                      const Tensor& invstd, bool pool) {
  const Layout l = layout_of(x, pool);
  Tensor out = torch::empty({l.images, l.channels, l.out_height(), l.out_width()}, x.options());
  Tensor winners = pool ? torch::empty(out.sizes(), x.options().dtype(torch::kUInt8)) : Tensor();
  const float* in = x.data_ptr<float>();
  float* o = out.data_ptr<float>();
  uint8_t* w = pool ? winners.data_ptr<uint8_t>() : nullptr;
  at::parallel_for(0, l.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c)
      forward_channel(in, l, c,
                      channel_norm(mean.data_ptr<float>(), invstd.data_ptr<float>(), weight.data_ptr<float>(),
                                   bias.data_ptr<float>(), c),
                      o, w);
  });
  return {out, winners};
}

class BatchNormReluPool : public torch::autograd::Function<BatchNormReluPool> {
 public:
  // mean and invstd are the statistics in use (the batch's while training); `training` says
  // whether they depend on x.
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& x, const Tensor& weight,
                        const Tensor& bias, const Tensor& mean, const Tensor& invstd, bool training, bool pool) {
    auto [out, winners] = run_forward(x, weight, bias, mean, invstd, pool);
    // The ReLU's mask is the output's sign, as LibTorch's; pooled, the winners hold it.
    ctx->save_for_backward({x, weight, bias, mean, invstd, pool ? Tensor() : out});
    ctx->saved_data["winners"] = winners;
    ctx->saved_data["training"] = training;
    ctx->saved_data["pool"] = pool;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor &x = saved[0], &weight = saved[1], &bias = saved[2], &mean = saved[3], &invstd = saved[4];
    const Tensor& out = saved[5];
    const bool training = ctx->saved_data["training"].toBool(), pool = ctx->saved_data["pool"].toBool();
    const Tensor winners = ctx->saved_data["winners"].toTensor();
    const Tensor grad_out = grads[0].contiguous();
    const Layout l = layout_of(x, pool);
    Tensor grad_x = torch::empty_like(x);
    Tensor grad_weight = torch::empty_like(weight), grad_bias = torch::empty_like(bias);
    const float* in = x.data_ptr<float>();
    const float* g = grad_out.data_ptr<float>();
    const uint8_t* w = pool ? winners.data_ptr<uint8_t>() : nullptr;
    const float* y = pool ? nullptr : out.data_ptr<float>();
    const double count = static_cast<double>(l.per_channel());
    at::parallel_for(0, l.channels, 1, [&](int64_t begin, int64_t end) {
      for (int64_t c = begin; c < end; ++c) {
        const ChannelNorm norm = channel_norm(mean.data_ptr<float>(), invstd.data_ptr<float>(),
                                              weight.data_ptr<float>(), bias.data_ptr<float>(), c);
        const auto [sum, centred] = gradient_sums(in, g, w, y, l, c, norm.mean);
        grad_bias.data_ptr<float>()[c] = static_cast<float>(sum);
        grad_weight.data_ptr<float>()[c] = static_cast<float>(centred * norm.invstd);
        const double slope = training ? -norm.scale * double{norm.invstd} * norm.invstd * centred / count : 0.0;
        const double offset = training ? -norm.scale * sum / count : 0.0;
        input_gradient(in, g, w, y, l, c, norm.mean, norm.scale, static_cast<float>(slope), static_cast<float>(offset),
                       grad_x.data_ptr<float>());
      }
    });
    return {grad_x, grad_weight, grad_bias, Tensor(), Tensor(), Tensor(), Tensor()};
  }
};

// The batch's statistics per channel (mean, 1 / sqrt(biased variance + eps)), with the norm's
// running statistics moved towards them by `momentum` (the unbiased variance, as LibTorch).
std::pair<Tensor, Tensor> batch_statistics(const Tensor& x, const Layout& l, torch::nn::BatchNorm2dImpl& norm,
                                           double momentum) {
  Tensor mean = torch::empty({l.channels}, x.options()), invstd = torch::empty({l.channels}, x.options());
  float* m = mean.data_ptr<float>();
  float* s = invstd.data_ptr<float>();
  float* running_mean = norm.running_mean.data_ptr<float>();
  float* running_var = norm.running_var.data_ptr<float>();
  const double eps = norm.options.eps(), count = static_cast<double>(l.per_channel());
  at::parallel_for(0, l.channels, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const auto [batch_mean, variance] = channel_moments(x.data_ptr<float>(), l, c);
      m[c] = static_cast<float>(batch_mean);
      s[c] = static_cast<float>(1.0 / std::sqrt(variance + eps));
      running_mean[c] = static_cast<float>(momentum * batch_mean + (1 - momentum) * running_mean[c]);
      running_var[c] = static_cast<float>(momentum * variance * count / (count - 1) + (1 - momentum) * running_var[c]);
    }
  });
  return {mean, invstd};
}

// The running statistics as (mean, 1 / sqrt(variance + eps)).
std::pair<Tensor, Tensor> running_statistics(const torch::nn::BatchNorm2dImpl& norm) {
  Tensor invstd = torch::empty_like(norm.running_var);
  const float* var = norm.running_var.data_ptr<float>();
  float* s = invstd.data_ptr<float>();
  for (int64_t c = 0; c < invstd.numel(); ++c) s[c] = static_cast<float>(1.0 / std::sqrt(var[c] + norm.options.eps()));
  return {norm.running_mean.clone(), invstd};
}

// torch::nn::BatchNorm2d's factor for this step, counting the step as it does.
double momentum_of_step(torch::nn::BatchNorm2dImpl& norm) {
  norm.num_batches_tracked += 1;
  if (const auto momentum = norm.options.momentum()) return *momentum;
  return 1.0 / norm.num_batches_tracked.item<double>();  // the cumulative average
}

bool is_float_vector(const Tensor& t, int64_t size) {
  return t.defined() && t.device().is_cpu() && t.scalar_type() == torch::kFloat && t.dim() == 1 && t.size(0) == size &&
         t.is_contiguous();
}

}  // namespace

bool batch_norm_relu_pool_supported(const torch::nn::BatchNorm2dImpl& norm, const Tensor& input, bool pool) {
  if (!input.defined() || !input.device().is_cpu() || input.scalar_type() != torch::kFloat || input.dim() != 4)
    return false;
  const int64_t channels = input.size(1);
  if (!norm.options.affine() || !norm.options.track_running_stats() || norm.options.num_features() != channels)
    return false;
  for (const Tensor* t : {&norm.weight, &norm.bias, &norm.running_mean, &norm.running_var})
    if (!is_float_vector(*t, channels)) return false;
  return input.numel() > 0 && (!pool || (input.size(2) >= 2 && input.size(3) >= 2));
}

Tensor batch_norm_relu_pool(torch::nn::BatchNorm2dImpl& norm, const Tensor& input, bool pool) {
  TORCH_CHECK(batch_norm_relu_pool_supported(norm, input, pool), "batch_norm_relu_pool: unsupported operands");
  const Tensor x = input.contiguous();
  const Layout l = layout_of(x, pool);
  Tensor mean, invstd;
  if (norm.is_training()) {
    TORCH_CHECK(l.per_channel() > 1, "Expected more than 1 value per channel when training, got input size ",
                input.sizes());
    torch::NoGradGuard no_grad;
    std::tie(mean, invstd) = batch_statistics(x, l, norm, momentum_of_step(norm));
  } else {
    std::tie(mean, invstd) = running_statistics(norm);
  }
  const bool needs_graph =
      torch::GradMode::is_enabled() && (x.requires_grad() || norm.weight.requires_grad() || norm.bias.requires_grad());
  if (!needs_graph) return run_forward(x, norm.weight, norm.bias, mean, invstd, pool).first;
  return BatchNormReluPool::apply(x, norm.weight, norm.bias, mean, invstd, norm.is_training(), pool);
}

}  // namespace convkit::models
