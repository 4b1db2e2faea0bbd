#include "models/patch_whitening.h"

#include <torch/torch.h>

#include "util/error.h"

namespace convkit::models {

PatchWhiteningImpl::PatchWhiteningImpl(int64_t channels, int64_t kernel)
    : channels(channels), kernel(kernel), padding((kernel - 1) / 2) {
  reset();
}

void PatchWhiteningImpl::reset() {
  const int64_t outputs = whitening_outputs(channels, kernel);
  weight = register_buffer("weight", torch::zeros({outputs, channels, kernel, kernel}));
  bias = register_buffer("bias", torch::zeros({outputs}));
}

torch::Tensor PatchWhiteningImpl::forward(const torch::Tensor& x) {
  return torch::conv2d(x, weight, bias, /*stride=*/1, padding);
}

void fit_patch_whitening(PatchWhiteningImpl& layer, const torch::Tensor& images) {
  if (images.dim() != 4 || images.size(1) != layer.channels || images.size(2) < layer.kernel ||
      images.size(3) < layer.kernel || images.size(0) == 0)
    throw Error("patch whitening: needs [N, " + std::to_string(layer.channels) + ", H, W] images of at least " +
                std::to_string(layer.kernel) + "x" + std::to_string(layer.kernel) + " pixels, got " +
                c10::str(images.sizes()));
  torch::NoGradGuard no_grad;
  const int64_t dims = layer.channels * layer.kernel * layer.kernel;
  const torch::Tensor used = images.slice(0, 0, kWhiteningImages).to(torch::kCPU);
  // Sums of the patches and of their outer products, a slice of images at a time (bounded memory).
  torch::Tensor sum = torch::zeros({dims}, torch::kDouble), outer = torch::zeros({dims, dims}, torch::kDouble);
  int64_t count = 0;
  for (int64_t first = 0; first < used.size(0); first += 500) {
    const torch::Tensor patches = torch::nn::functional::unfold(used.slice(0, first, first + 500).to(torch::kDouble),
                                                                torch::nn::functional::UnfoldFuncOptions(layer.kernel))
                                      .transpose(1, 2)
                                      .reshape({-1, dims});
    sum += patches.sum(0);
    outer += patches.t().mm(patches);
    count += patches.size(0);
  }
  const torch::Tensor mean = sum / count;
  const torch::Tensor covariance = outer / count - mean.outer(mean);
  const auto [eigenvalues, eigenvectors] = torch::linalg_eigh(covariance);
  torch::Tensor v = eigenvectors.t();  // one eigenvector per row
  const torch::Tensor largest = v.abs().argmax(1, /*keepdim=*/true);
  v = v * v.gather(1, largest).sign();
  const torch::Tensor w = v / (eigenvalues.clamp_min(0) + kWhiteningEps).sqrt().unsqueeze(1);
  const torch::Tensor b = -w.mv(mean);
  layer.weight.copy_(torch::cat({w, -w}).view_as(layer.weight));
  layer.bias.copy_(torch::cat({b, -b}));
}

}  // namespace convkit::models
