#include "models/fused_linear.h"

#include <dlfcn.h>
#include <torch/torch.h>

namespace convkit::models {
namespace {

using torch::Tensor;

// The dense layers' products go straight to a GEMM: at::addmm and friends cost a dispatch,
// checks and allocations each, as much as the arithmetic of a 32-image shard's layer. The GEMM is
// oneDNN's (the library LibTorch's convolutions already use, found at run time in the process):
// it picks its kernels from the CPU's instruction set, where Debian's OpenBLAS 0.3.21, which
// LibTorch's own products call, falls back to its generic SSE3 kernels on CPUs newer than it
// knows (Sapphire Rapids), several times slower. OpenBLAS's Fortran sgemm_ stays the fallback.
using DnnlSgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
                          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n, const int* k,
                       const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
                       const float* beta, float* c, const int* ldc);

DnnlSgemm dnnl_sgemm() {
  static const auto sgemm = reinterpret_cast<DnnlSgemm>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return sgemm;
}

Sgemm blas_sgemm() {
  static const auto sgemm = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return sgemm;
}

bool gemm_available() { return dnnl_sgemm() || blas_sgemm(); }

// Column-major C (m x n) = op(A) op(B) + beta C, as BLAS has it; a row-major matrix is its
// transpose in column-major, so the calls below read "backwards". oneDNN's GEMM is row-major:
// the same product is C^T = op(B)^T op(A)^T there.
void gemm(char transa, char transb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
          int64_t ldb, float beta, float* c, int64_t ldc) {
  if (dnnl_sgemm() && dnnl_sgemm()(transb, transa, n, m, k, 1.0f, b, ldb, a, lda, beta, c, ldc) == 0) return;
  const int mi = static_cast<int>(m), ni = static_cast<int>(n), ki = static_cast<int>(k);
  const int lda_i = static_cast<int>(lda), ldb_i = static_cast<int>(ldb), ldc_i = static_cast<int>(ldc);
  const float one = 1.0f;
  TORCH_CHECK(blas_sgemm(), "oneDNN's sgemm refused a ", m, "x", n, "x", k, " product and no BLAS sgemm_ is loaded");
  blas_sgemm()(&transa, &transb, &mi, &ni, &ki, &one, a, &lda_i, b, &ldb_i, &beta, c, &ldc_i);
}

// BLAS takes int sizes; empty operands are left to LibTorch.
bool blas_size(int64_t v) { return v > 0 && v < (int64_t{1} << 31); }

// The BLAS path: CPU float32, contiguous 2-D input, contiguous weight and bias.
bool blas_linear_fits(const Tensor& input, const Tensor& weight, const Tensor& bias) {
  return gemm_available() && bias.defined() && input.dim() == 2 && input.device().is_cpu() &&
         input.scalar_type() == torch::kFloat && weight.scalar_type() == torch::kFloat &&
         bias.scalar_type() == torch::kFloat && weight.device().is_cpu() && input.is_contiguous() &&
         weight.is_contiguous() && bias.is_contiguous() && blas_size(input.size(0)) && blas_size(input.size(1)) &&
         blas_size(weight.size(0)) && weight.size(1) == input.size(1) && bias.numel() == weight.size(0);
}

// out[n, o] = input[n, i] . weight[o, i] + bias[o], then max(x, 0) (NaN stays) when `relu`.
Tensor blas_linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, bool relu) {
  const int64_t n = input.size(0), in = input.size(1), out_features = weight.size(0);
  Tensor out = torch::empty({n, out_features}, input.options());
  float* y = out.data_ptr<float>();
  const float* b = bias.data_ptr<float>();
  for (int64_t r = 0; r < n; ++r) std::copy(b, b + out_features, y + r * out_features);
  gemm('T', 'N', out_features, n, in, weight.data_ptr<float>(), in, input.data_ptr<float>(), in, 1.0f, y, out_features);
  if (relu)
    for (int64_t j = 0; j < n * out_features; ++j) y[j] = y[j] < 0 ? 0.0f : y[j];
  return out;
}

// input @ weight^T + bias, then the ReLU in place when `relu`.
Tensor linear_forward(const Tensor& input, const Tensor& weight, const Tensor& bias, bool relu) {
  if (blas_linear_fits(input, weight, bias)) return blas_linear_forward(input, weight, bias, relu);
  Tensor out = bias.defined() ? at::addmm(bias, input, weight.t()) : at::mm(input, weight.t());
  return relu ? out.relu_() : out;
}

// A parameter's grad(), created as zeros the first time, for adding into in place.
Tensor& gradient_buffer(Tensor& parameter) {
  Tensor& grad = parameter.mutable_grad();
  if (!grad.defined()) grad = at::zeros_like(parameter);
  return grad;
}

bool blas_gradient_fits(const Tensor& grad, const Tensor& parameter) {
  return grad.is_contiguous() && grad.scalar_type() == torch::kFloat && grad.device().is_cpu() &&
         grad.sizes() == parameter.sizes();
}

// Gradients of weight and bias are accumulated here, not returned: they are kept in the
// context as the parameters themselves (a saved variable may be unpacked as a new handle, and
// grad() belongs to the handle's tensor).
class Linear : public torch::autograd::Function<Linear> {
 public:
  static Tensor forward(torch::autograd::AutogradContext* ctx, const Tensor& input, const Tensor& weight,
                        const Tensor& bias, bool relu) {
    const Tensor out = linear_forward(input, weight, bias, relu);
    ctx->save_for_backward({input, relu ? out : Tensor()});
    ctx->saved_data["weight"] = weight;
    ctx->saved_data["bias"] = bias;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const Tensor& input = saved[0];
    const Tensor& out = saved[1];
    Tensor weight = ctx->saved_data["weight"].toTensor();
    Tensor bias = ctx->saved_data["bias"].toTensor();
    const bool want_input = ctx->needs_input_grad(0), want_weight = ctx->needs_input_grad(1),
               want_bias = ctx->needs_input_grad(2);
    if (blas_linear_fits(input, weight, bias) && grads[0].scalar_type() == torch::kFloat &&
        (!want_weight || blas_gradient_fits(gradient_buffer(weight), weight)) &&
        (!want_bias || blas_gradient_fits(gradient_buffer(bias), bias))) {
      return {blas_backward(input, out, weight, bias, grads[0].contiguous(), want_input, want_weight, want_bias),
              Tensor(), Tensor(), Tensor()};
    }
    const Tensor grad = out.defined() ? at::threshold_backward(grads[0], out, 0) : grads[0];
    if (want_weight) gradient_buffer(weight).addmm_(grad.t(), input);
    if (want_bias) gradient_buffer(bias).add_(grad.sum(0));
    return {want_input ? grad.mm(weight) : Tensor(), Tensor(), Tensor(), Tensor()};
  }

 private:
  // The ReLU's mask, then weight.grad += grad^T input, bias.grad += column sums of grad, and the
  // input's gradient grad @ weight, straight on the buffers.
  static Tensor blas_backward(const Tensor& input, const Tensor& out, Tensor& weight, Tensor& bias,
                              const Tensor& grad_out, bool want_input, bool want_weight, bool want_bias) {
    const int64_t n = input.size(0), in = input.size(1), out_features = weight.size(0);
    thread_local std::vector<float> masked;
    const float* g = grad_out.data_ptr<float>();
    if (out.defined()) {
      masked.resize(n * out_features);
      const float* y = out.data_ptr<float>();
      for (int64_t j = 0; j < n * out_features; ++j) masked[j] = y[j] > 0 ? g[j] : 0.0f;
      g = masked.data();
    }
    if (want_weight)
      gemm('N', 'T', in, out_features, n, input.data_ptr<float>(), in, g, out_features, 1.0f,
           weight.mutable_grad().data_ptr<float>(), in);
    if (want_bias) {
      float* gb = bias.mutable_grad().data_ptr<float>();
      for (int64_t r = 0; r < n; ++r)
        for (int64_t o = 0; o < out_features; ++o) gb[o] += g[r * out_features + o];
    }
    if (!want_input) return Tensor();
    Tensor grad_input = torch::empty({n, in}, input.options());
    gemm('N', 'N', in, n, out_features, weight.data_ptr<float>(), in, g, out_features, 0.0f,
         grad_input.data_ptr<float>(), in);
    return grad_input;
  }
};

}  // namespace

Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias, bool relu) {
  const bool needs_graph = torch::GradMode::is_enabled() && (input.requires_grad() || weight.requires_grad() ||
                                                             (bias.defined() && bias.requires_grad()));
  // A custom autograd function cannot take an undefined tensor: without a bias, LibTorch's ops.
  if (needs_graph && !bias.defined()) {
    const Tensor out = torch::nn::functional::linear(input, weight);
    return relu ? torch::relu(out) : out;
  }
  if (needs_graph) return Linear::apply(input, weight, bias, relu);
  return linear_forward(input, weight, bias, relu);
}

}  // namespace convkit::models
