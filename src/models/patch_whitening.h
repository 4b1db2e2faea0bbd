// A frozen first layer that whitens the input's k x k patches (the `pw<k>` spec token), as the
// fast CIFAR-10 trainers (hlb-CIFAR10, airbench) start their networks: a convolution whose
// filters are the eigenvectors of the training patches' covariance, each scaled by one over the
// square root of its eigenvalue, so the layer's outputs are decorrelated with unit variance from
// the first step, and the later layers need not spend steps learning that. Each filter comes
// with its negation, so a ReLU after it loses nothing.
//
// The filters are buffers, not parameters: no optimiser, weight decay or gradient touches them,
// and they are saved in model.pt as whiten.weight and whiten.bias (an nn.Conv2d's names, so
// PyTorch and the exporters read the layer as a convolution).
#pragma once

#include <torch/nn/cloneable.h>
#include <torch/types.h>

namespace convkit::models {

// Added to each eigenvalue before the inverse square root: the flattest directions of the
// patches (mostly noise) are amplified at most this much. airbench's value, for inputs
// normalised to unit variance as convkit's are.
inline constexpr double kWhiteningEps = 5e-4;
// The fit reads this many training images (the first of the given ones).
inline constexpr int64_t kWhiteningImages = 5000;

class PatchWhiteningImpl : public torch::nn::Cloneable<PatchWhiteningImpl> {
 public:
  // 2 * channels * kernel^2 outputs, padding (kernel - 1) / 2; the filters are zero until fitted.
  PatchWhiteningImpl(int64_t channels, int64_t kernel);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);

  int64_t channels, kernel, padding;
  torch::Tensor weight, bias;
};
TORCH_MODULE(PatchWhitening);

// The outputs per input channel count of a `pw<kernel>` layer.
inline int64_t whitening_outputs(int64_t channels, int64_t kernel) { return 2 * channels * kernel * kernel; }

// Sets the filters of `layer` from `images` ([N, C, H, W], normalised as the network sees them):
// the mean and covariance (in float64) of every k x k patch of the first kWhiteningImages, their
// eigenvectors (signed so that each one's largest entry is positive, for determinism), weight =
// [W; -W] with W = diag(1 / sqrt(lambda + eps)) V^T, and bias = [-W mu; W mu], so that the first
// half of the outputs has zero mean and covariance diag(lambda / (lambda + eps)) on those patches.
void fit_patch_whitening(PatchWhiteningImpl& layer, const torch::Tensor& images);

}  // namespace convkit::models
