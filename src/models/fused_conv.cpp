#include "models/fused_conv.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "models/cpu_dispatch.h"

namespace convkit::models {
namespace {

// The kernels use GCC's vector extensions (models/cpu_dispatch.h).

using torch::Tensor;

constexpr uint8_t kNoGradient = 255;  // the window's maximum did not pass the ReLU
constexpr int64_t kMaxRow = 512;      // widest conv row kept on the stack
// Weight gradients are summed per group of this many images, then the groups in order: the
// same additions in the same order whatever the thread count.
constexpr int64_t kImagesPerPartial = 8;

struct Geometry {
  int64_t channels, height, width;  // input image
  int64_t outputs, kernel;          // convolution
  int64_t pooled_h, pooled_w;       // after 2x2 pooling
  int64_t input_size() const { return channels * height * width; }
  int64_t output_size() const { return outputs * pooled_h * pooled_w; }
};

Geometry geometry_of(const Tensor& input, const Tensor& weight) {
  const int64_t kernel = weight.size(2);
  return {input.size(1),
          input.size(2),
          input.size(3),
          weight.size(0),
          kernel,
          (input.size(2) - kernel + 1) / 2,
          (input.size(3) - kernel + 1) / 2};
}

// Eight floats: one AVX2 register (the baseline clone splits it in two SSE halves).
typedef float Vec __attribute__((vector_size(32)));
typedef float UnalignedVec __attribute__((vector_size(32), aligned(4)));
typedef int32_t IntVec __attribute__((vector_size(32)));
typedef int32_t UnalignedIntVec __attribute__((vector_size(32), aligned(4)));
constexpr int64_t kLanes = 8;
CONVKIT_INLINE Vec load(const float* p) { return *reinterpret_cast<const UnalignedVec*>(p); }
CONVKIT_INLINE void store(float* p, Vec v) { *reinterpret_cast<UnalignedVec*>(p) = v; }
// Lane i and its neighbour i^1 trade places; spelled for GCC and for clang (the sanitizer build).
CONVKIT_INLINE Vec swap_neighbours(Vec v) {
#if defined(__clang__)
  return __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
#else
  return __builtin_shuffle(v, IntVec{1, 0, 3, 2, 5, 4, 7, 6});
#endif
}

// max_pool2d's scan order and tie rule (first maximum wins, NaN wins) over the two conv rows,
// then the ReLU; the winner's position in its window is kept for the backward pass. Written
// without branches: which element wins is data-dependent and would mispredict.
CONVKIT_INLINE void pool_relu(const float* top, const float* bottom, int64_t pooled_w, float* out, uint8_t* winners) {
  for (int64_t q = 0; q < pooled_w; ++q) {
    const float rest[3] = {top[2 * q + 1], bottom[2 * q], bottom[2 * q + 1]};
    float best = top[2 * q];
    int at = 0;
    for (int i = 0; i < 3; ++i) {
      const bool take = rest[i] > best || rest[i] != rest[i];
      best = take ? rest[i] : best;
      at = take ? i + 1 : at;
    }
    const bool passes = best > 0;
    out[q] = passes || best != best ? best : 0.0f;
    winners[q] = passes ? static_cast<uint8_t>(at) : kNoGradient;
  }
}

// The two conv rows under pooled row `p` for kOutputs output channels from `o`, kVectors x 8
// columns each (the columns the pooling reads), held in registers. Several channels at once
// give the FMA units independent chains and reuse each input load.
template <int kVectors, int kOutputs>
CONVKIT_INLINE void forward_rows_vectorised(const float* in, const float* weight, const float* bias, const Geometry& g,
                                            int64_t o, int64_t p, float* out, uint8_t* winners) {
  const int64_t k = g.kernel, per_output = g.channels * k * k;
  Vec top[kOutputs][kVectors], bottom[kOutputs][kVectors];
  for (int j = 0; j < kOutputs; ++j)
    for (int v = 0; v < kVectors; ++v) top[j][v] = bottom[j][v] = Vec{} + bias[o + j];
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* plane = in + (c * g.height + 2 * p) * g.width;
    const float* w = weight + o * per_output + c * k * k;
    for (int64_t r = 0; r <= k; ++r) {  // input row r feeds conv row 2p through kernel row r, 2p+1 through r-1
      const float* src = plane + r * g.width;
      for (int64_t kj = 0; kj < k; ++kj) {
        Vec x[kVectors];
        for (int v = 0; v < kVectors; ++v) x[v] = load(src + kj + v * kLanes);
        for (int j = 0; j < kOutputs; ++j) {
          if (r < k)
            for (int v = 0; v < kVectors; ++v) top[j][v] += w[j * per_output + r * k + kj] * x[v];
          if (r > 0)
            for (int v = 0; v < kVectors; ++v) bottom[j][v] += w[j * per_output + (r - 1) * k + kj] * x[v];
        }
      }
    }
  }
  // Pooling in the registers: lane i meets its neighbour i^1 and the even lanes hold the
  // windows (pool_relu's scan order and tie rule).
  for (int j = 0; j < kOutputs; ++j) {
    float best_row[kVectors * kLanes];
    int32_t winner_row[kVectors * kLanes];
    for (int v = 0; v < kVectors; ++v) {
      Vec best = top[j][v];
      IntVec at = {};
      const Vec candidates[3] = {swap_neighbours(top[j][v]), bottom[j][v], swap_neighbours(bottom[j][v])};
      for (int i = 0; i < 3; ++i) {
        const IntVec take = (candidates[i] > best) | (candidates[i] != candidates[i]);
        best = take ? candidates[i] : best;
        at = take ? IntVec{} + (i + 1) : at;
      }
      const IntVec passes = best > 0;
      store(best_row + v * kLanes, (passes | (best != best)) ? best : Vec{});
      *reinterpret_cast<UnalignedIntVec*>(winner_row + v * kLanes) = passes ? at : IntVec{} + kNoGradient;
    }
    const int64_t at = ((o + j) * g.pooled_h + p) * g.pooled_w;
    for (int64_t q = 0; q < g.pooled_w; ++q) {
      out[at + q] = best_row[2 * q];
      winners[at + q] = static_cast<uint8_t>(winner_row[2 * q]);
    }
  }
}

// Any other row width, one column at a time.
CONVKIT_INLINE void forward_row_scalar(const float* in, const float* weight, float bias, const Geometry& g, int64_t p,
                                       float* out, uint8_t* winners) {
  const int64_t row = 2 * g.pooled_w, k = g.kernel;
  float top[kMaxRow], bottom[kMaxRow];
  for (int64_t x = 0; x < row; ++x) top[x] = bottom[x] = bias;
  for (int64_t c = 0; c < g.channels; ++c) {
    const float* plane = in + (c * g.height + 2 * p) * g.width;
    const float* w = weight + c * k * k;
    for (int64_t ki = 0; ki < k; ++ki)
      for (int64_t kj = 0; kj < k; ++kj)
        for (int64_t x = 0; x < row; ++x) {
          top[x] += w[ki * k + kj] * plane[ki * g.width + x + kj];
          bottom[x] += w[ki * k + kj] * plane[(ki + 1) * g.width + x + kj];
        }
  }
  pool_relu(top, bottom, g.pooled_w, out, winners);
}

// kVectors = 0: the scalar path.
template <int kVectors>
CONVKIT_INLINE void forward_image(const float* in, const float* weight, const float* bias, const Geometry& g,
                                  float* out, uint8_t* winners) {
  constexpr int kOutputs = kVectors == 0 ? 1 : kVectors >= 3 ? 2 : 4;  // 8-16 accumulators
  int64_t o = 0;
  for (; kVectors > 0 && o + kOutputs <= g.outputs; o += kOutputs)
    for (int64_t p = 0; p < g.pooled_h; ++p)
      forward_rows_vectorised<kVectors, kOutputs>(in, weight, bias, g, o, p, out, winners);
  for (; o < g.outputs; ++o) {
    for (int64_t p = 0; p < g.pooled_h; ++p) {
      if constexpr (kVectors > 0) {
        forward_rows_vectorised<kVectors, 1>(in, weight, bias, g, o, p, out, winners);
      } else {
        const int64_t at = (o * g.pooled_h + p) * g.pooled_w;
        forward_row_scalar(in, weight + o * g.channels * g.kernel * g.kernel, bias[o], g, p, out + at, winners + at);
      }
    }
  }
}

CONVKIT_CLONES void forward_images(const float* in, const float* weight, const float* bias, const Geometry& g,
                                   int64_t begin, int64_t end, float* out, uint8_t* winners) {
  const int64_t row = 2 * g.pooled_w;
  for (int64_t n = begin; n < end; ++n) {
    const float* x = in + n * g.input_size();
    float* y = out + n * g.output_size();
    uint8_t* w = winners + n * g.output_size();
    if (row == 8)
      forward_image<1>(x, weight, bias, g, y, w);  // LeNet's conv2
    else if (row == 16)
      forward_image<2>(x, weight, bias, g, y, w);
    else if (row == 24)
      forward_image<3>(x, weight, bias, g, y, w);  // LeNet's conv1
    else if (row == 32)
      forward_image<4>(x, weight, bias, g, y, w);
    else
      forward_image<0>(x, weight, bias, g, y, w);
  }
}

// Back-propagates one image through its pooling winners only: 1 in 4 conv outputs, fewer after
// the ReLU. Kernel rows are handled as 8 lanes (k <= 8): `image` is the input copied with 8
// floats of slack, `weight8` the weights with rows padded to 8 by zeros, `grad_weight8` the
// weight gradient in that padded layout (lanes past k collect junk and are dropped), and
// `grad_image` (null when not wanted) this image's input gradient, with the same slack.
CONVKIT_INLINE void backward_image(const float* image, const float* weight8, const float* grad_out,
                                   const uint8_t* winners, const Geometry& g, float* grad_weight8, float* grad_bias,
                                   float* grad_image) {
  const int64_t k = g.kernel, plane = g.height * g.width;
  for (int64_t o = 0; o < g.outputs; ++o) {
    const float* w_o = weight8 + o * g.channels * k * kLanes;
    float* gw_o = grad_weight8 + o * g.channels * k * kLanes;
    for (int64_t p = 0; p < g.pooled_h; ++p) {
      for (int64_t q = 0; q < g.pooled_w; ++q) {
        const int64_t i = (o * g.pooled_h + p) * g.pooled_w + q;
        const float gv = grad_out[i];
        if (winners[i] == kNoGradient || gv == 0.0f) continue;
        grad_bias[o] += gv;
        const int64_t offset = (2 * p + winners[i] / 2) * g.width + 2 * q + winners[i] % 2;
        for (int64_t c = 0; c < g.channels; ++c) {
          for (int64_t ki = 0; ki < k; ++ki) {
            const int64_t at = c * plane + offset + ki * g.width, row = (c * k + ki) * kLanes;
            store(gw_o + row, load(gw_o + row) + gv * load(image + at));
            if (grad_image) store(grad_image + at, load(grad_image + at) + gv * load(w_o + row));
          }
        }
      }
    }
  }
}

// One group of images: its weight gradient (padded layout) and bias gradient, and the input
// gradients when `grad_input` is not null. `scratch` holds two padded images.
CONVKIT_CLONES void backward_images(const float* in, const float* weight8, const float* grad_out,
                                    const uint8_t* winners, const Geometry& g, int64_t begin, int64_t end,
                                    float* grad_weight8, float* grad_bias, float* grad_input, float* scratch) {
  const int64_t size = g.input_size();
  float* image = scratch;
  float* grad_image = scratch + size + kLanes;
  std::fill(image + size, image + size + kLanes, 0.0f);
  for (int64_t n = begin; n < end; ++n) {
    std::copy(in + n * size, in + (n + 1) * size, image);
    if (grad_input) std::fill(grad_image, grad_image + size + kLanes, 0.0f);
    backward_image(image, weight8, grad_out + n * g.output_size(), winners + n * g.output_size(), g, grad_weight8,
                   grad_bias, grad_input ? grad_image : nullptr);
    if (grad_input) std::copy(grad_image, grad_image + size, grad_input + n * size);
  }
}

// Runs the forward pass over the batch; returns the pooled output and the winners.
std::pair<Tensor, Tensor> run_forward(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  const Geometry g = geometry_of(input, weight);
  const int64_t n = input.size(0);
  Tensor out = torch::empty({n, g.outputs, g.pooled_h, g.pooled_w}, input.options());
  Tensor winners = torch::empty({n, g.outputs, g.pooled_h, g.pooled_w}, input.options().dtype(torch::kUInt8));
  const float* x = input.data_ptr<float>();
  const float* w = weight.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  float* y = out.data_ptr<float>();
  uint8_t* win = winners.data_ptr<uint8_t>();
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) { forward_images(x, w, b, g, begin, end, y, win); });
  return {out, winners};
}

class ConvPoolRelu : public torch::autograd::Function<ConvPoolRelu> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        const Tensor& bias) {
    auto [out, winners] = run_forward(input, weight, bias);
    ctx->save_for_backward({input, weight});
    ctx->saved_data["winners"] = winners;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& input = saved[0];
    const Tensor& weight = saved[1];
    const Tensor winners = ctx->saved_data["winners"].toTensor();
    const Tensor grad_out = grads[0].contiguous();
    const Geometry g = geometry_of(input, weight);
    const int64_t n = input.size(0);
    const int64_t groups = (n + kImagesPerPartial - 1) / kImagesPerPartial;
    const int64_t rows = g.outputs * g.channels * g.kernel;  // kernel rows, 8 lanes each when padded
    const int64_t width = rows * kLanes + g.outputs;         // a group's padded weight then bias gradient
    const int64_t scratch_size = 2 * (g.input_size() + kLanes);

    // Work space in plain memory, reused from call to call: at LeNet's sizes a handful of
    // tensor allocations and copies cost as much as a small batch's arithmetic.
    thread_local std::vector<float> weight8, partials, scratch;
    weight8.assign(rows * kLanes, 0.0f);
    const float* w = weight.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r) std::copy(w + r * g.kernel, w + (r + 1) * g.kernel, weight8.data() + r * kLanes);
    partials.assign(groups * width, 0.0f);
    scratch.resize(groups * scratch_size);
    Tensor grad_input = ctx->needs_input_grad(0) ? torch::empty_like(input) : Tensor();
    const float* x = input.data_ptr<float>();
    const float* w8 = weight8.data();
    const float* go = grad_out.data_ptr<float>();
    const uint8_t* win = winners.data_ptr<uint8_t>();
    float* part = partials.data();
    float* scr = scratch.data();
    float* gi = grad_input.defined() ? grad_input.data_ptr<float>() : nullptr;
    at::parallel_for(0, groups, 1, [&](int64_t begin, int64_t end) {
      for (int64_t group = begin; group < end; ++group) {
        float* sums = part + group * width;
        backward_images(x, w8, go, win, g, group * kImagesPerPartial, std::min(n, (group + 1) * kImagesPerPartial),
                        sums, sums + rows * kLanes, gi, scr + group * scratch_size);
      }
    });
    // The groups in order, into the unpadded weight layout and the bias.
    Tensor grad_weight = torch::zeros_like(weight, torch::MemoryFormat::Contiguous);
    Tensor grad_bias = torch::zeros({g.outputs}, weight.options());
    float* gw = grad_weight.data_ptr<float>();
    float* gb = grad_bias.data_ptr<float>();
    for (int64_t group = 0; group < groups; ++group) {
      const float* sums = part + group * width;
      for (int64_t r = 0; r < rows; ++r)
        for (int64_t j = 0; j < g.kernel; ++j) gw[r * g.kernel + j] += sums[r * kLanes + j];
      for (int64_t o = 0; o < g.outputs; ++o) gb[o] += sums[rows * kLanes + o];
    }
    return {grad_input, grad_weight, grad_bias};
  }
};

bool shape_fits(int64_t height, int64_t width, int64_t kernel) {
  return kernel >= 1 && kernel <= kLanes && height - kernel + 1 >= 2 && width - kernel + 1 >= 2 &&
         width - kernel + 1 <= kMaxRow;
}

}  // namespace

bool conv_pool_relu_fits(const torch::nn::detail::ConvNdOptions<2>& conv, int64_t height, int64_t width) {
  using Pair = std::array<int64_t, 2>;
  const auto* padding = c10::get_if<torch::ExpandingArray<2>>(&conv.padding());
  const auto kernel = *conv.kernel_size();
  return *conv.stride() == Pair{1, 1} && *conv.dilation() == Pair{1, 1} && conv.groups() == 1 && padding &&
         **padding == Pair{0, 0} && kernel[0] == kernel[1] && shape_fits(height, width, kernel[0]);
}

bool conv_pool_relu_supported(const Tensor& input, const Tensor& weight) {
  if (!input.defined() || !weight.defined()) return false;
  if (!input.device().is_cpu() || input.scalar_type() != torch::kFloat || weight.scalar_type() != torch::kFloat)
    return false;
  if (input.dim() != 4 || weight.dim() != 4 || weight.size(1) != input.size(1) || weight.size(2) != weight.size(3))
    return false;
  return shape_fits(input.size(2), input.size(3), weight.size(2));
}

Tensor conv_pool_relu(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  TORCH_CHECK(conv_pool_relu_supported(input, weight), "conv_pool_relu: unsupported operands");
  const Tensor x = input.contiguous();
  const Tensor w = weight.contiguous();
  const Tensor b = bias.defined() ? bias.contiguous() : torch::zeros({weight.size(0)}, weight.options());
  const bool needs_graph =
      torch::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || b.requires_grad());
  if (!needs_graph) return run_forward(x, w, b).first;  // inference: no graph, winners dropped
  return ConvPoolRelu::apply(x, w, b);
}

}  // namespace convkit::models
