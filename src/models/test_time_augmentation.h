// Test-time augmentation (--tta): a trained network evaluated on several views of each image
// (the image, its mirror image, 1-pixel shifts), their class probabilities averaged. A network
// trained on mirrored and shifted images is about as sure of those views, and the average
// irons out its view-dependent mistakes.
#pragma once

#include <torch/types.h>

#include <string>

#include "models/classifier.h"

namespace convkit::models {

struct TtaViews {
  bool flip = false;   // the mirror image (left-right)
  bool shift = false;  // each view also shifted by one pixel left, right, up and down
  bool any() const { return flip || shift; }
  int64_t count() const { return (flip ? 2 : 1) * (shift ? 5 : 1); }
  std::string str() const;  // "flip,shift", "flip", "shift" or "none"
};

// "", "none", "flip", "shift", "flip,shift" (either order); an Error naming `flag` otherwise.
TtaViews parse_tta(const std::string& text, const std::string& flag = "--tta");

// The wrapped network in training mode; in eval mode, logits = log of the mean softmax over the
// views (so cross-entropy and argmax read them as any logits) and the identity view's hidden
// representation. Shifted-in pixels get `background`, the normalised black [1,C,1,1]. The
// inference graph (and so exports) is the wrapped network's own.
class TestTimeAugmentedImpl : public ClassifierImpl {
 public:
  TestTimeAugmentedImpl(Classifier model, TtaViews views, torch::Tensor background);
  Output forward(const torch::Tensor& x) override;
  InferenceGraph inference_graph() const override { return model_->inference_graph(); }
  bool convolutions_fused() const override { return model_->convolutions_fused(); }

 private:
  Classifier model_;  // not registered: the wrapper's state dict stays empty
  TtaViews views_;
  torch::Tensor background_;
};
TORCH_MODULE(TestTimeAugmented);

// `model` itself without views, else the wrapper around it.
Classifier with_tta(const Classifier& model, const TtaViews& views, const torch::Tensor& background);

}  // namespace convkit::models
