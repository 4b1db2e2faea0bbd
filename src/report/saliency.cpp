#include "report/saliency.h"

#include <torch/torch.h>

#include <limits>
#include <sstream>
#include <vector>

#include "util/error.h"

namespace convkit::report {
namespace {

// The heat colour's opacity where the saliency peaks: below 1, so the object stays visible
// under its most salient pixels.
constexpr double kPeakOpacity = 0.8;

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream out;
  out << t.sizes();
  return out.str();
}

// Eval mode, and parameters that do not require gradients, so that the backward pass computes
// and stores nothing for them: the fused linear layer's backward writes weight.grad() itself
// whenever autograd asks it for the weight's gradient. Both are put back as they were when the
// scope ends, however it ends.
class InputGradientsOnly {
 public:
  explicit InputGradientsOnly(models::ClassifierImpl& model)
      : model_(model), parameters_(model.parameters()), was_training_(model.is_training()) {
    for (torch::Tensor& p : parameters_) {
      requires_grad_.push_back(p.requires_grad());
      p.requires_grad_(false);
    }
    model_.eval();
  }
  ~InputGradientsOnly() {
    // In reverse, so that a parameter listed twice ends with the flag it had first.
    for (size_t i = parameters_.size(); i-- > 0;) parameters_[i].requires_grad_(requires_grad_[i]);
    model_.train(was_training_);
  }
  InputGradientsOnly(const InputGradientsOnly&) = delete;
  InputGradientsOnly& operator=(const InputGradientsOnly&) = delete;

 private:
  models::ClassifierImpl& model_;
  std::vector<torch::Tensor> parameters_;
  std::vector<bool> requires_grad_;
  bool was_training_;
};

void check_inputs(const torch::Tensor& inputs, const torch::Tensor& classes) {
  if (inputs.dim() != 4) throw Error("saliency: expects inputs [N, C, H, W], got " + shape_of(inputs));
  if (classes.defined() && (classes.dim() != 1 || classes.size(0) != inputs.size(0)))
    throw Error("saliency: expects one class per image, got " + shape_of(classes) + " for " + shape_of(inputs));
}

// Each image's map divided by its own peak.
torch::Tensor scaled_to_unit_peak(const torch::Tensor& maps) {
  const torch::Tensor peak = maps.flatten(1).amax(1).view({-1, 1, 1});
  return maps / peak.clamp_min(std::numeric_limits<float>::min());
}

}  // namespace

torch::Tensor saliency_maps(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& classes) {
  check_inputs(inputs, classes);
  if (inputs.size(0) == 0) return torch::zeros({0, inputs.size(2), inputs.size(3)});
  // The caller may be inside inference mode or a no-grad scope; autograd must record this pass.
  const torch::InferenceMode recorded(false);
  const torch::AutoGradMode gradients(true);
  const InputGradientsOnly scope(model);
  // A copy made here is an ordinary tensor even when `inputs` is an inference tensor, which
  // autograd cannot save.
  const torch::Tensor x = inputs.detach().clone().requires_grad_(true);
  const torch::Tensor logits = model.forward(x).logits;
  const torch::Tensor target = classes.defined() ? classes.to(logits.device(), torch::kInt64) : logits.argmax(1);
  // In eval mode the images do not interact, so one backward pass of the summed logits gives
  // each image the gradient of its own logit.
  const torch::Tensor selected = logits.gather(1, target.view({-1, 1})).sum();
  const torch::Tensor gradient = torch::autograd::grad({selected}, {x})[0];
  return scaled_to_unit_peak(gradient.abs().amax(1).to(torch::kCPU, torch::kFloat));
}

torch::Tensor saliency_overlay(const torch::Tensor& grey, const torch::Tensor& saliency) {
  if (grey.dim() != 2 || grey.sizes() != saliency.sizes())
    throw Error("saliency overlay: expects a grey image [H, W] and a map of its size, got " + shape_of(grey) + " and " +
                shape_of(saliency));
  const torch::Tensor s = saliency.to(torch::kCPU, torch::kFloat).clamp(0, 1);
  const torch::Tensor image = grey.to(torch::kCPU, torch::kFloat).unsqueeze(0);
  const torch::Tensor heat = torch::stack({torch::full_like(s, 255), 255 * s, torch::zeros_like(s)});
  const torch::Tensor opacity = kPeakOpacity * s;
  return (1 - opacity) * image + opacity * heat;
}

}  // namespace convkit::report
