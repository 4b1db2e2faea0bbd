// The fused kernels (conv+pool+ReLU, batch norm+ReLU(+pool), linear+ReLU, Adam's step) against the LibTorch ops they
// replace, and the fast training path built on them (flat parameters, batch shards over
// threads) against the plain one.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "models/batch_norm_relu_pool.h"
#include "models/fused_conv.h"
#include "models/fused_linear.h"
#include "models/registry.h"
#include "models/spec_net.h"
#include "train/flat_parameters.h"
#include "train/fused_adam.h"
#include "train/loop.h"
#include "train/optimizer.h"
#include "train/shards.h"

using namespace convkit;
namespace F = torch::nn::functional;

namespace {

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& w, const torch::Tensor& b) {
  return torch::relu(F::max_pool2d(F::conv2d(x, w, F::Conv2dFuncOptions().bias(b)), F::MaxPool2dFuncOptions(2)));
}

// Largest |a - b| relative to b's scale (at least 1): sums of hundreds of products carry the
// rounding of their magnitude, not of the result.
double relative_error(const torch::Tensor& a, const torch::Tensor& b) {
  const double scale = std::max(1.0, b.abs().max().item<double>());
  return (a.to(torch::kDouble) - b.to(torch::kDouble)).abs().max().item<double>() / scale;
}

struct Shape {
  int64_t n, c, h, w, o, k;
};

// Forward and all three gradients of the fused kernel (float) against LibTorch in float64.
void expect_matches_libtorch(const Shape& s, const torch::Tensor& input, const torch::Tensor& weight,
                             const torch::Tensor& bias) {
  SCOPED_TRACE("shape n" + std::to_string(s.n) + " c" + std::to_string(s.c) + " " + std::to_string(s.h) + "x" +
               std::to_string(s.w) + " o" + std::to_string(s.o) + " k" + std::to_string(s.k));
  ASSERT_TRUE(models::conv_pool_relu_supported(input, weight));
  const auto x = input.clone().requires_grad_(), w = weight.clone().requires_grad_(), b = bias.clone().requires_grad_();
  const auto xd = input.to(torch::kDouble).requires_grad_(), wd = weight.to(torch::kDouble).requires_grad_(),
             bd = bias.to(torch::kDouble).requires_grad_();
  const torch::Tensor fused = models::conv_pool_relu(x, w, b);
  const torch::Tensor ref = reference(xd, wd, bd);
  ASSERT_EQ(fused.sizes(), ref.sizes());
  EXPECT_LE(relative_error(fused, ref), 1e-5);

  const torch::Tensor grad_out = torch::randn(ref.sizes(), torch::kDouble);
  const auto got = torch::autograd::grad({fused}, {x, w, b}, {grad_out.to(torch::kFloat)});
  const auto want = torch::autograd::grad({ref}, {xd, wd, bd}, {grad_out});
  EXPECT_LE(relative_error(got[0], want[0]), 1e-5) << "input gradient";
  EXPECT_LE(relative_error(got[1], want[1]), 1e-5) << "weight gradient";
  EXPECT_LE(relative_error(got[2], want[2]), 1e-5) << "bias gradient";
}

}  // namespace

TEST(FusedConvPoolRelu, MatchesLibTorchOnLeNetAndOddShapes) {
  torch::manual_seed(7);
  const std::vector<Shape> shapes = {
      {16, 1, 28, 28, 6, 5},   // LeNet conv1 (24-wide rows: three vectors)
      {16, 6, 12, 12, 16, 5},  // LeNet conv2 (8-wide rows: one vector)
      {3, 2, 11, 13, 5, 3},    // odd conv output 9x11: the last row and column are dropped
      {2, 3, 9, 9, 4, 4},      // even kernel, 6-wide rows: the scalar path
      {5, 2, 20, 20, 3, 5},    // 16-wide rows, output channels not a multiple of the block
      {2, 1, 36, 36, 7, 5},    // 32-wide rows
      {2, 2, 12, 12, 3, 8},    // the largest kernel
      {1, 1, 3, 3, 1, 2},      // a 2x2 conv output, one pooled value
      {9, 1, 28, 28, 1, 1},    // 1x1 kernel
  };
  for (const Shape& s : shapes) {
    expect_matches_libtorch(s, torch::randn({s.n, s.c, s.h, s.w}), torch::randn({s.o, s.c, s.k, s.k}) * 0.3,
                            torch::randn({s.o}) * 0.1);
  }
}

TEST(FusedConvPoolRelu, TiesGoToTheFirstMaximumAndReluStopsGradients) {
  // A zero image: every conv output equals its bias, so each window is a four-way tie. max_pool2d
  // sends the gradient to the first element; a negative bias fails the ReLU and sends nothing.
  const Shape s{4, 2, 10, 10, 3, 3};
  expect_matches_libtorch(s, torch::zeros({s.n, s.c, s.h, s.w}), torch::randn({s.o, s.c, s.k, s.k}),
                          torch::tensor({0.5f, -0.5f, 0.0f}));
  // Integer-valued images and weights: many exact ties inside windows.
  torch::manual_seed(3);
  expect_matches_libtorch(s, torch::randint(0, 2, {s.n, s.c, s.h, s.w}).to(torch::kFloat),
                          torch::randint(-1, 2, {s.o, s.c, s.k, s.k}).to(torch::kFloat), torch::zeros({s.o}));
}

TEST(FusedConvPoolRelu, SameNumbersWhateverTheThreadCount) {
  torch::manual_seed(5);
  const auto x = torch::randn({37, 6, 12, 12}).requires_grad_();
  const auto w = (torch::randn({16, 6, 5, 5}) * 0.2).requires_grad_(), b = torch::randn({16}).requires_grad_();
  const int threads = torch::get_num_threads();
  std::vector<std::vector<torch::Tensor>> results;
  for (int t : {1, 2, 3}) {
    torch::set_num_threads(t);
    const auto y = models::conv_pool_relu(x, w, b);
    auto grads = torch::autograd::grad({y.square().sum()}, {x, w, b});
    grads.push_back(y.detach());
    results.push_back(grads);
  }
  torch::set_num_threads(threads);
  for (size_t r = 1; r < results.size(); ++r)
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(results[r][i].equal(results[0][i])) << r << " " << i;
}

TEST(FusedConvPoolRelu, UnsupportedOperandsAreRefused) {
  EXPECT_FALSE(models::conv_pool_relu_supported(torch::randn({1, 1, 28, 28}), torch::randn({6, 1, 9, 9})));  // k > 8
  EXPECT_FALSE(models::conv_pool_relu_supported(torch::randn({1, 2, 28, 28}), torch::randn({6, 1, 5, 5})));  // channels
  EXPECT_FALSE(models::conv_pool_relu_supported(torch::randn({1, 1, 5, 5}), torch::randn({6, 1, 5, 5})));  // 1x1 output
  EXPECT_FALSE(
      models::conv_pool_relu_supported(torch::randn({1, 1, 28, 28}, torch::kDouble), torch::randn({6, 1, 5, 5})));
  EXPECT_THROW(models::conv_pool_relu(torch::randn({1, 2, 28, 28}), torch::randn({6, 1, 5, 5}), torch::randn({6})),
               c10::Error);
}

namespace {

struct NormCase {
  std::vector<int64_t> shape;
  bool pool, training;
  c10::optional<double> momentum = 0.1;
};

// A batch norm with varied affine parameters (some scales negative, which turns the pooling's
// maximum into the input's minimum) and running statistics, and its float64 twin.
std::pair<torch::nn::BatchNorm2d, torch::nn::BatchNorm2d> norm_pair(int64_t channels, c10::optional<double> momentum) {
  torch::nn::BatchNorm2d norm(torch::nn::BatchNorm2dOptions(channels).momentum(momentum)), twin(norm->options);
  torch::NoGradGuard no_grad;
  norm->weight.uniform_(-1, 2), norm->bias.uniform_(-1, 1);
  norm->running_mean.uniform_(-1, 1), norm->running_var.uniform_(0.5, 2);
  twin->to(torch::kDouble);
  for (const auto& item : norm->named_parameters()) twin->named_parameters()[item.key()].copy_(item.value());
  for (const auto& item : norm->named_buffers()) twin->named_buffers()[item.key()].copy_(item.value());
  return {norm, twin};
}

// Forward, the three gradients and the running statistics of the fused op (float) against
// LibTorch's batch norm, ReLU and max-pool in float64, over two steps.
void expect_norm_matches_libtorch(const NormCase& k, const torch::Tensor& input) {
  SCOPED_TRACE(std::string(k.pool ? "pooled " : "") + (k.training ? "training " : "evaluation ") +
               c10::str(input.sizes()) + (k.momentum ? "" : " cumulative"));
  auto [norm, twin] = norm_pair(input.size(1), k.momentum);
  norm->train(k.training), twin->train(k.training);
  ASSERT_TRUE(models::batch_norm_relu_pool_supported(*norm, input, k.pool));
  for (int step = 0; step < 2; ++step) {
    const torch::Tensor batch = input * (1 + step) + step;
    const auto x = batch.clone().requires_grad_(), xd = batch.to(torch::kDouble).requires_grad_();
    const torch::Tensor fused = models::batch_norm_relu_pool(*norm, x, k.pool);
    torch::Tensor ref = torch::relu(twin->forward(xd));
    if (k.pool) ref = F::max_pool2d(ref, F::MaxPool2dFuncOptions(2));
    ASSERT_EQ(fused.sizes(), ref.sizes());
    EXPECT_LE(relative_error(fused, ref), 1e-5);
    const torch::Tensor grad_out = torch::randn(ref.sizes(), torch::kDouble);
    const auto got = torch::autograd::grad({fused}, {x, norm->weight, norm->bias}, {grad_out.to(torch::kFloat)});
    const auto want = torch::autograd::grad({ref}, {xd, twin->weight, twin->bias}, {grad_out});
    EXPECT_LE(relative_error(got[0], want[0]), 1e-5) << "input gradient";
    EXPECT_LE(relative_error(got[1], want[1]), 1e-5) << "weight gradient";
    EXPECT_LE(relative_error(got[2], want[2]), 1e-5) << "bias gradient";
    EXPECT_LE(relative_error(norm->running_mean, twin->running_mean), 1e-6) << "running mean";
    EXPECT_LE(relative_error(norm->running_var, twin->running_var), 1e-6) << "running variance";
    EXPECT_EQ(norm->num_batches_tracked.item<int64_t>(), twin->num_batches_tracked.item<int64_t>());
  }
}

}  // namespace

TEST(FusedBatchNormReluPool, MatchesLibTorchTrainingAndEvaluatingOnOddShapes) {
  torch::manual_seed(17);
  const std::vector<std::vector<int64_t>> shapes = {
      {6, 32, 28, 28},  // the competition network's first block: whole vectors of windows
      {5, 8, 14, 14},   // 49 windows per plane: a partial vector
      {3, 5, 7, 9},     // odd sizes: the last row and column are dropped by the pooling
      {2, 3, 2, 2},     // one window per plane
      {1, 2, 3, 5},     // one image
  };
  for (const auto& shape : shapes)
    for (bool pool : {true, false})
      for (bool training : {true, false})
        expect_norm_matches_libtorch({shape, pool, training}, torch::randn(shape) * 2 + 0.5);
  // Without a momentum, the running statistics are the cumulative average.
  expect_norm_matches_libtorch({{4, 3, 6, 6}, true, true, c10::nullopt}, torch::randn({4, 3, 6, 6}));
}

TEST(FusedBatchNormReluPool, TiesGoToTheFirstMaximumAndReluStopsGradients) {
  torch::manual_seed(19);
  // Values 0, 1, 2: after the norm many windows hold equal maxima; below the mean the ReLU stops
  // the gradient.
  for (bool training : {true, false})
    expect_norm_matches_libtorch({{4, 3, 8, 8}, true, training}, torch::randint(0, 3, {4, 3, 8, 8}).to(torch::kFloat));
}

TEST(FusedBatchNormReluPool, SameNumbersWhateverTheThreadCount) {
  torch::manual_seed(23);
  const auto x = (torch::randn({9, 7, 10, 12}) * 3).requires_grad_();
  const int threads = torch::get_num_threads();
  std::vector<std::vector<torch::Tensor>> results;
  for (int t : {1, 2, 3}) {
    torch::set_num_threads(t);
    torch::manual_seed(1);
    torch::nn::BatchNorm2d norm(7);
    const auto y = models::batch_norm_relu_pool(*norm, x, true);
    auto grads = torch::autograd::grad({y.square().sum()}, {x, norm->weight, norm->bias});
    grads.insert(grads.end(), {y.detach(), norm->running_mean.clone(), norm->running_var.clone()});
    results.push_back(grads);
  }
  torch::set_num_threads(threads);
  for (size_t r = 1; r < results.size(); ++r)
    for (size_t i = 0; i < results[0].size(); ++i) EXPECT_TRUE(results[r][i].equal(results[0][i])) << r << " " << i;
}

TEST(FusedBatchNormReluPool, UnsupportedOperandsAreRefused) {
  torch::nn::BatchNorm2d norm(4);
  EXPECT_TRUE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 4, 2, 2}), true));
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 3, 6, 6}), true));  // channels
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 4, 1, 6}), true));  // no window
  EXPECT_TRUE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 4, 1, 6}), false));
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 4, 6, 6}, torch::kDouble), true));
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*norm, torch::randn({2, 4, 36}), false));
  torch::nn::BatchNorm2d plain(torch::nn::BatchNorm2dOptions(4).affine(false));
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*plain, torch::randn({2, 4, 6, 6}), true));
  torch::nn::BatchNorm2d untracked(torch::nn::BatchNorm2dOptions(4).track_running_stats(false));
  EXPECT_FALSE(models::batch_norm_relu_pool_supported(*untracked, torch::randn({2, 4, 6, 6}), true));
  // One value per channel has no batch variance, as in LibTorch.
  EXPECT_THROW(models::batch_norm_relu_pool(*norm, torch::randn({1, 4, 1, 1}), false), c10::Error);
  EXPECT_THROW(models::batch_norm_relu_pool(*norm, torch::randn({2, 3, 6, 6}), true), c10::Error);
}

TEST(FusedBatchNormReluPool, InferenceNeedsNoGraphAndKeepsTheStatistics) {
  torch::nn::BatchNorm2d norm(3);
  norm->eval();
  torch::NoGradGuard no_grad;
  const torch::Tensor y = models::batch_norm_relu_pool(*norm, torch::randn({2, 3, 4, 4}), true);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(norm->num_batches_tracked.item<int64_t>(), 0);
  EXPECT_TRUE(norm->running_mean.equal(torch::zeros({3})));
}

TEST(FusedLinear, MatchesLibTorchWithAndWithoutReluAndBias) {
  torch::manual_seed(13);
  for (bool relu : {true, false}) {
    for (bool with_bias : {true, false}) {
      SCOPED_TRACE(std::string(relu ? "relu" : "linear") + (with_bias ? " with bias" : " without bias"));
      const torch::Tensor input = torch::randn({7, 33}), weight = torch::randn({5, 33}) * 0.2;
      const torch::Tensor bias = with_bias ? torch::randn({5}) : torch::Tensor();
      const auto x = input.clone().requires_grad_(), w = weight.clone().requires_grad_();
      const auto xd = input.to(torch::kDouble).requires_grad_(), wd = weight.to(torch::kDouble).requires_grad_();
      torch::Tensor b, bd;
      if (with_bias) b = bias.clone().requires_grad_(), bd = bias.to(torch::kDouble).requires_grad_();
      const torch::Tensor fused = models::linear(x, w, b, relu);
      torch::Tensor ref = F::linear(xd, wd, bd);
      if (relu) ref = torch::relu(ref);
      EXPECT_LE(relative_error(fused, ref), 1e-6);
      const torch::Tensor grad_out = torch::randn(ref.sizes(), torch::kDouble);
      // Twice: gradients accumulate in weight.grad() and bias.grad() as autograd's would.
      for (int pass = 0; pass < 2; ++pass) {
        fused.backward(grad_out.to(torch::kFloat), /*retain_graph=*/true);
        ref.backward(grad_out, /*retain_graph=*/true);
      }
      EXPECT_LE(relative_error(x.grad(), xd.grad()), 1e-6) << "input gradient";
      EXPECT_LE(relative_error(w.grad(), wd.grad()), 1e-6) << "weight gradient";
      if (with_bias) {
        EXPECT_LE(relative_error(b.grad(), bd.grad()), 1e-6) << "bias gradient";
      }
    }
  }
}

TEST(FusedLinear, BlasAndLibTorchPathsAgreeOnLeNetShapes) {
  // Contiguous float operands take the direct BLAS calls; a transposed input or a strided
  // gradient buffer takes LibTorch's ops. Both must give autograd's numbers.
  torch::manual_seed(31);
  for (bool strided : {false, true}) {
    SCOPED_TRACE(strided ? "LibTorch path" : "BLAS path");
    const torch::Tensor input = torch::randn({32, 256}), weight = torch::randn({120, 256}) * 0.06;
    const torch::Tensor bias = torch::randn({120}) * 0.1;
    const auto x = strided ? input.t().contiguous().t().requires_grad_() : input.clone().requires_grad_();
    const auto w = weight.clone().requires_grad_(), b = bias.clone().requires_grad_();
    if (strided) w.mutable_grad() = torch::zeros({256, 120}).t();
    const auto xd = input.to(torch::kDouble).requires_grad_(), wd = weight.to(torch::kDouble).requires_grad_(),
               bd = bias.to(torch::kDouble).requires_grad_();
    const torch::Tensor fused = models::linear(x, w, b, true);
    const torch::Tensor ref = torch::relu(F::linear(xd, wd, bd));
    EXPECT_LE(relative_error(fused, ref), 1e-6);
    const torch::Tensor grad_out = torch::randn(ref.sizes(), torch::kDouble);
    fused.backward(grad_out.to(torch::kFloat));
    ref.backward(grad_out);
    EXPECT_LE(relative_error(x.grad(), xd.grad()), 1e-6) << "input gradient";
    EXPECT_LE(relative_error(w.grad(), wd.grad()), 1e-6) << "weight gradient";
    EXPECT_LE(relative_error(b.grad(), bd.grad()), 1e-6) << "bias gradient";
    EXPECT_EQ(w.grad().is_contiguous(), !strided) << "the gradient buffer is written in place";
  }
}

TEST(FusedLinear, EmptyBatchTakesLibTorchsPath) {
  const auto w = torch::randn({4, 6}).requires_grad_(), b = torch::randn({4}).requires_grad_();
  const torch::Tensor y = models::linear(torch::zeros({0, 6}), w, b, true);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{0, 4}));
  y.sum().backward();
  EXPECT_TRUE(w.grad().equal(torch::zeros({4, 6})));
}

TEST(FusedLinear, ReluKeepsNaN) {
  const auto x = torch::tensor({{1.0f, -1.0f}}), w = torch::eye(2), b = torch::tensor({std::nanf(""), 0.0f});
  const torch::Tensor y = models::linear(x, w, b, true);
  EXPECT_TRUE(std::isnan(y[0][0].item<float>()));
  EXPECT_EQ(y[0][1].item<float>(), 0.0f);
}

TEST(FusedLinear, InputsWithoutGradientsAndInferenceNeedNoGraph) {
  const auto w = torch::randn({4, 6}).requires_grad_(), b = torch::randn({4}).requires_grad_();
  const torch::Tensor x = torch::randn({3, 6});  // data: no gradient wanted
  models::linear(x, w, b, true).sum().backward();
  EXPECT_FALSE(x.grad().defined());
  EXPECT_TRUE(w.grad().defined() && b.grad().defined());
  torch::NoGradGuard no_grad;
  EXPECT_FALSE(models::linear(x, w, b, true).requires_grad());
}

TEST(FusedAdam, MatchesLibTorchAdamToRounding) {
  for (double weight_decay : {0.0, 0.01}) {
    SCOPED_TRACE("weight decay " + std::to_string(weight_decay));
    torch::manual_seed(17);
    // Sizes around the vector width and the per-thread chunks, and one larger than a chunk.
    std::vector<torch::Tensor> ours, theirs;
    for (int64_t n : {1, 7, 513, 40000}) {
      const torch::Tensor start = torch::randn({n});
      ours.push_back(start.clone().requires_grad_());
      theirs.push_back(start.clone().requires_grad_());
    }
    const auto options = torch::optim::AdamOptions(1e-2).weight_decay(weight_decay);
    train::FusedAdam fused(ours, options);
    torch::optim::Adam reference(theirs, options);
    for (int step = 0; step < 20; ++step) {
      for (size_t i = 0; i < ours.size(); ++i) {
        const torch::Tensor grad = torch::randn(ours[i].sizes()) * static_cast<double>(i + 1);
        ours[i].mutable_grad() = grad.clone();
        theirs[i].mutable_grad() = grad.clone();
      }
      fused.step();
      reference.step();
    }
    for (size_t i = 0; i < ours.size(); ++i) EXPECT_LE(relative_error(ours[i], theirs[i]), 1e-6) << "parameter " << i;
  }
}

TEST(FusedAdam, SameNumbersWhateverTheThreadCountAndItsStateLoadsIntoAdam) {
  const int threads = torch::get_num_threads();
  std::vector<torch::Tensor> results;
  for (int t : {1, 2, 3}) {
    torch::set_num_threads(t);
    torch::manual_seed(19);
    auto p = torch::randn({70001}).requires_grad_();
    train::FusedAdam adam({p}, torch::optim::AdamOptions(1e-3));
    for (int step = 0; step < 5; ++step) {
      p.mutable_grad() = torch::randn({70001});
      adam.step();
    }
    results.push_back(p.detach().clone());
    // The saved state is Adam's: LibTorch's own Adam continues from it exactly as we would.
    std::stringstream saved;
    torch::serialize::OutputArchive archive;
    adam.save(archive);
    archive.save_to(saved);
    auto q = p.detach().clone().requires_grad_();
    torch::optim::Adam theirs({q}, torch::optim::AdamOptions(1e-3));
    torch::serialize::InputArchive in;
    in.load_from(saved);
    theirs.load(in);
    const torch::Tensor grad = torch::randn({70001});
    p.mutable_grad() = grad.clone();
    q.mutable_grad() = grad.clone();
    adam.step();
    theirs.step();
    EXPECT_LE(relative_error(p, q), 1e-6);
  }
  torch::set_num_threads(threads);
  for (size_t r = 1; r < results.size(); ++r) EXPECT_TRUE(results[r].equal(results[0])) << "threads run " << r;
}

TEST(FusedAdam, AddsGradientPartsInItsPass) {
  torch::manual_seed(23);
  const torch::Tensor start = torch::randn({1000});
  auto p = start.clone().requires_grad_(), q = start.clone().requires_grad_();
  train::FusedAdam fused({p}, torch::optim::AdamOptions(1e-2));
  torch::optim::Adam reference({q}, torch::optim::AdamOptions(1e-2));
  p.mutable_grad() = torch::zeros({1000});
  const std::vector<torch::Tensor> parts = {torch::zeros({1000}), torch::zeros({1000})};
  EXPECT_TRUE(fused.set_gradient_parts(p.grad(), parts));
  EXPECT_FALSE(fused.set_gradient_parts(torch::zeros({1000}), parts)) << "not the gradient of a parameter";
  EXPECT_FALSE(fused.set_gradient_parts(p.grad(), {torch::zeros({999})})) << "wrong size";
  EXPECT_TRUE(fused.set_gradient_parts(p.grad(), parts));  // the failed calls cleared them
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor a = torch::randn({1000}), b = torch::randn({1000}), c = torch::randn({1000});
    p.mutable_grad().copy_(a);
    parts[0].copy_(b);
    parts[1].copy_(c);
    q.mutable_grad() = a + b + c;
    fused.step();
    reference.step();
    EXPECT_TRUE(p.grad().equal(a)) << "the parameter's own gradient is left as it was";
  }
  EXPECT_LE(relative_error(p, q), 1e-6);
}

TEST(FusedAdam, SubnormalMomentsAreFlushedAndParametersStillMatchAdam) {
  // One gradient, then zeros: the first moment decays by 0.9 a step through the subnormal range
  // (below 1.2e-38) around step 800. LibTorch keeps the subnormals; the fused step flushes them.
  const torch::Tensor start = torch::randn({64});
  auto p = start.clone().requires_grad_(), q = start.clone().requires_grad_();
  train::FusedAdam fused({p}, torch::optim::AdamOptions(1e-3));
  torch::optim::Adam reference({q}, torch::optim::AdamOptions(1e-3));
  for (int step = 0; step < 900; ++step) {
    const torch::Tensor grad = step == 0 ? torch::randn({64}) * 1e-3 : torch::zeros({64});
    p.mutable_grad() = grad.clone();
    q.mutable_grad() = grad.clone();
    fused.step();
    reference.step();
  }
  const auto& ours = static_cast<torch::optim::AdamParamState&>(*fused.state().begin()->second);
  const auto& theirs = static_cast<torch::optim::AdamParamState&>(*reference.state().begin()->second);
  const auto subnormal = [](const torch::Tensor& t) {
    const torch::Tensor a = t.abs();
    return ((a > 0) & (a < std::numeric_limits<float>::min())).sum().item<int64_t>();
  };
  EXPECT_GT(subnormal(theirs.exp_avg()), 0) << "the case this test is about";
  EXPECT_EQ(subnormal(ours.exp_avg()), 0);
  EXPECT_LE((p - q).abs().max().item<double>(), 1e-6);
}

TEST(FusedAdam, AmsgradAndOtherDtypesTakeLibTorchsStep) {
  const torch::Tensor start = torch::randn({50});
  for (const auto& options : {torch::optim::AdamOptions(1e-2).amsgrad(true), torch::optim::AdamOptions(1e-2)}) {
    const auto dtype = options.amsgrad() ? torch::kFloat : torch::kDouble;
    auto p = start.to(dtype).clone().requires_grad_(), q = start.to(dtype).clone().requires_grad_();
    train::FusedAdam fused({p}, options);
    torch::optim::Adam reference({q}, options);
    for (int step = 0; step < 3; ++step) {
      const torch::Tensor grad = torch::randn({50}, dtype);
      p.mutable_grad() = grad.clone();
      q.mutable_grad() = grad.clone();
      fused.step();
      reference.step();
    }
    EXPECT_TRUE(p.equal(q)) << "bit-identical: the same code ran";
  }
}

TEST(FusedModels, LeNetAndSpecsAgreeWithTheirExactMode) {
  for (const std::string name : {"lenet", "mlp", "c6k5-mp2-c16k5-mp2-fc120-fc84", "c8k3-mp2-c12k3-mp2-fc32"}) {
    SCOPED_TRACE(name);
    torch::manual_seed(11);
    auto model = models::make_model(name);
    const torch::Tensor x = torch::randn({8, 1, 28, 28});
    const torch::Tensor y = torch::randint(0, 10, {8}, torch::kLong);
    std::vector<torch::Tensor> logits, grads;
    for (bool exact : {true, false}) {
      model->set_exact(exact);
      model->zero_grad();
      const torch::Tensor out = model->forward(x).logits;
      F::cross_entropy(out, y).backward();
      logits.push_back(out.detach());
      for (const auto& p : model->parameters()) grads.push_back(p.grad().clone());
    }
    EXPECT_LE(relative_error(logits[1], logits[0]), 1e-5);
    const size_t n = grads.size() / 2;
    for (size_t i = 0; i < n; ++i) EXPECT_LE(relative_error(grads[n + i], grads[i]), 1e-5) << "parameter " << i;
  }
}

TEST(FusedModels, BatchNormSpecsAgreeWithTheirExactModeIncludingRunningStatistics) {
  // The presets' network (each norm pooled) and one whose first norm is not followed by a pool.
  for (const std::string name : {"c32k3p1bn-mp2-c64k3p1bn-mp2-fc256bn", "c8k3p1bn-c8k3bn-mp2-dr0.2-fc16"}) {
    SCOPED_TRACE(name);
    const torch::Tensor x = torch::randn({8, 1, 28, 28});
    const torch::Tensor y = torch::randint(0, 10, {8}, torch::kLong);
    std::vector<std::vector<torch::Tensor>> results;
    for (bool exact : {true, false}) {
      torch::manual_seed(11);
      auto model = models::make_model(name);
      model->set_exact(exact);
      const torch::Tensor out = model->forward(x).logits;
      F::cross_entropy(out, y).backward();
      std::vector<torch::Tensor> r = {out.detach()};
      for (const auto& p : model->parameters()) r.push_back(p.grad().clone());
      for (const auto& b : model->buffers()) r.push_back(b.clone());
      model->eval();
      r.push_back(model->forward(x).logits.detach());
      results.push_back(r);
    }
    ASSERT_EQ(results[0].size(), results[1].size());
    for (size_t i = 0; i < results[0].size(); ++i)
      EXPECT_LE(relative_error(results[1][i], results[0][i]), 1e-5) << "tensor " << i;
  }
}

TEST(FusedModels, SpecsSayWhetherEveryConvolutionIsFused) {
  EXPECT_TRUE(models::make_model("lenet")->convolutions_fused());
  EXPECT_TRUE(models::make_model("mlp")->convolutions_fused());
  EXPECT_TRUE(models::make_model("c6k5-mp2-c16k5-mp2-fc120")->convolutions_fused());
  EXPECT_FALSE(models::make_model("c6k5bn-mp2-fc120")->convolutions_fused());     // batch norm between
  EXPECT_FALSE(models::make_model("c6k5-ap2-fc120")->convolutions_fused());       // average pooling
  EXPECT_FALSE(models::make_model("tanh-c6k5-mp2-fc120")->convolutions_fused());  // not a ReLU
  EXPECT_FALSE(models::make_model("c6k3p1-mp2-fc120")->convolutions_fused());     // padding
  EXPECT_FALSE(models::make_model("c6k9-mp2-fc120")->convolutions_fused());       // kernel too large
}

TEST(FastTraining, FlatParametersUpdateExactlyLikeSeparateOnes) {
  torch::manual_seed(1);
  auto separate = models::make_model("lenet");
  torch::manual_seed(1);
  auto flat_model = models::make_model("lenet");
  const torch::Tensor flat = train::flatten_parameters(*flat_model);
  EXPECT_EQ(flat.numel(), models::count_parameters(*flat_model));
  torch::optim::Adam a(separate->parameters(), torch::optim::AdamOptions(1e-2));
  torch::optim::Adam b({flat}, torch::optim::AdamOptions(1e-2));
  separate->set_exact(true);  // the same forward on both sides: only the optimiser differs
  flat_model->set_exact(true);
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor x = torch::randn({4, 1, 28, 28});
    a.zero_grad();
    b.zero_grad();
    separate->forward(x).logits.square().sum().backward();
    flat_model->forward(x).logits.square().sum().backward();
    a.step();
    b.step();
  }
  const auto p = separate->parameters(), q = flat_model->parameters();
  for (size_t i = 0; i < p.size(); ++i) EXPECT_TRUE(p[i].equal(q[i])) << i;
  EXPECT_TRUE(q[0].is_alias_of(flat));  // still views of the buffer the optimiser updates
}

TEST(FastTraining, BatchShardsGiveTheWholeBatchGradient) {
  // One SGD step with lr 1 moves each parameter by minus its gradient (the shards' gradients
  // summed by the trainer); FusedAdam sums them itself. With and without shards the steps must
  // agree to float rounding. The second batch has 2 images: fewer than the shards, so replicas
  // sit idle with the first batch's gradients in their buffers. The data are seeded: SGD at lr 1
  // magnifies rounding on some draws far past the bound, which made an unseeded test fail by chance.
  torch::manual_seed(11);
  const torch::Tensor x = torch::randn({66, 1, 28, 28}), y = torch::randint(0, 10, {66}, torch::kLong);
  const torch::Tensor order = torch::arange(66);
  for (const std::string optimizer : {"sgd", "adam"}) {
    SCOPED_TRACE(optimizer);
    std::vector<std::vector<torch::Tensor>> after;
    for (int64_t replicas : {0, 1, 3}) {
      torch::manual_seed(2);
      auto model = models::make_model("lenet");
      const torch::Tensor flat = train::flatten_parameters(*model);
      train::StepSettings settings;
      settings.shards = train::make_shards(*model, flat, "lenet", replicas);
      ASSERT_EQ(static_cast<int64_t>(settings.shards.replicas.size()), replicas);
      const torch::Tensor next_draw = torch::randn({3});
      torch::manual_seed(2);
      models::make_model("lenet");
      EXPECT_TRUE(next_draw.equal(torch::randn({3}))) << "replicas must leave the global generator alone";
      train::OptimizerSettings options;
      options.name = optimizer;
      options.lr = optimizer == "sgd" ? 1.0 : 1e-3;
      options.momentum = 0;
      const auto step = train::make_optimizer(options, {flat});
      settings.optimizer_sums_shards = train::share_shard_gradients(*step, settings.shards);
      EXPECT_EQ(settings.optimizer_sums_shards, optimizer == "adam" && replicas > 0);
      // Two passes: the second starts from gradients the first left in the buffers.
      for (int pass = 0; pass < 2; ++pass) {
        const auto stats = train::train_epoch(*model, *step, x, y, order, 64, torch::kCPU, settings);
        EXPECT_GT(stats.loss, 0);
      }
      std::vector<torch::Tensor> params;
      for (const auto& p : model->parameters()) params.push_back(p.detach().clone());
      after.push_back(params);
    }
    // Adam divides by sqrt(v), which magnifies the rounding of near-zero gradient elements; a
    // missing or stale shard gradient moves parameters by ~4e-3.
    const double tolerance = optimizer == "sgd" ? 1e-6 : 1e-5;
    for (size_t r = 1; r < after.size(); ++r)
      for (size_t i = 0; i < after[0].size(); ++i)
        EXPECT_LE(relative_error(after[r][i], after[0][i]), tolerance) << r << " " << i;
  }
}

TEST(FastTraining, NoShardsWhereTheyWouldChangeTheMaths) {
  const auto shards = [](const std::string& name, bool exact) {
    auto model = models::make_model(name);
    model->set_exact(exact);
    const torch::Tensor flat = train::flatten_parameters(*model);
    return train::make_shards(*model, flat, name, 1).replicas.size();
  };
  EXPECT_EQ(shards("lenet", false), 1u);
  EXPECT_EQ(shards("lenet-bn", false), 0u);
  EXPECT_EQ(shards("lenet", true), 0u);
  EXPECT_EQ(shards("c6k3p1-mp2-fc32", false), 0u);
}
