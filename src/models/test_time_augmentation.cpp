#include "models/test_time_augmentation.h"

#include <torch/torch.h>

#include <sstream>

#include "util/error.h"

namespace convkit::models {
namespace {

// x moved by (dy, dx) pixels, the uncovered row or column set to `background`.
torch::Tensor shifted(const torch::Tensor& x, int64_t dy, int64_t dx, const torch::Tensor& background) {
  const int64_t h = x.size(2), w = x.size(3);
  torch::Tensor out = background.expand_as(x).clone();
  using torch::indexing::Slice;
  out.index_put_({Slice(), Slice(), Slice(std::max<int64_t>(dy, 0), h + std::min<int64_t>(dy, 0)),
                  Slice(std::max<int64_t>(dx, 0), w + std::min<int64_t>(dx, 0))},
                 x.index({Slice(), Slice(), Slice(std::max<int64_t>(-dy, 0), h + std::min<int64_t>(-dy, 0)),
                          Slice(std::max<int64_t>(-dx, 0), w + std::min<int64_t>(-dx, 0))}));
  return out;
}

}  // namespace

std::string TtaViews::str() const {
  if (flip && shift) return "flip,shift";
  return flip ? "flip" : shift ? "shift" : "none";
}

TtaViews parse_tta(const std::string& text, const std::string& flag) {
  TtaViews v;
  if (text.empty() || text == "none") return v;
  std::stringstream parts(text);
  std::string part;
  while (std::getline(parts, part, ',')) {
    if (part == "flip" && !v.flip) {
      v.flip = true;
    } else if (part == "shift" && !v.shift) {
      v.shift = true;
    } else {
      throw Error(flag + ": '" + text + "' is not none, flip, shift or flip,shift");
    }
  }
  return v;
}

TestTimeAugmentedImpl::TestTimeAugmentedImpl(Classifier model, TtaViews views, torch::Tensor background)
    : model_(std::move(model)), views_(views), background_(std::move(background)) {}

Output TestTimeAugmentedImpl::forward(const torch::Tensor& x) {
  if (is_training() || !views_.any()) return model_->forward(x);
  model_->eval();
  const Output plain = model_->forward(x);
  torch::Tensor probabilities = torch::softmax(plain.logits, 1);
  const torch::Tensor background = background_.to(x.device(), x.scalar_type());
  std::vector<torch::Tensor> bases{x};
  if (views_.flip) bases.push_back(x.flip(3));
  for (size_t b = 0; b < bases.size(); ++b) {
    if (b > 0) probabilities += torch::softmax(model_->forward(bases[b]).logits, 1);
    if (!views_.shift) continue;
    for (const auto& [dy, dx] : {std::pair<int64_t, int64_t>{0, 1}, {0, -1}, {1, 0}, {-1, 0}})
      probabilities += torch::softmax(model_->forward(shifted(bases[b], dy, dx, background)).logits, 1);
  }
  return {(probabilities / static_cast<double>(views_.count())).log(), plain.hidden};
}

Classifier with_tta(const Classifier& model, const TtaViews& views, const torch::Tensor& background) {
  if (!views.any()) return model;
  return std::make_shared<TestTimeAugmentedImpl>(model, views, background);
}

}  // namespace convkit::models
