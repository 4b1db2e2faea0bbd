#include "eval/predict.h"

#include <torch/torch.h>

#include <vector>

#include "eval/batched_forward.h"

namespace convkit::eval {

Predictions predict_all(models::ClassifierImpl& model, const torch::Tensor& pixels, const data::Normalization& norm,
                        const torch::Device& device) {
  std::vector<torch::Tensor> probs, hidden;
  forward_in_batches(model, pixels, norm, device, [&](int64_t, const models::Output& out) {
    probs.push_back(torch::softmax(out.logits, 1).cpu());
    hidden.push_back(out.hidden.reshape({out.hidden.size(0), -1}).cpu());
  });
  Predictions p;
  p.probabilities = torch::cat(probs);
  p.predicted = p.probabilities.argmax(1);
  p.hidden = torch::cat(hidden);
  return p;
}

torch::Tensor predict_probabilities(models::ClassifierImpl& model, const torch::Tensor& pixels,
                                    const data::Normalization& norm, const torch::Device& device) {
  torch::Tensor probabilities;
  forward_in_batches(
      model, pixels, norm, device,
      [&](int64_t, const models::Output& out) { probabilities = torch::softmax(out.logits, 1).cpu(); },
      std::max<int64_t>(1, pixels.size(0)));
  return probabilities;
}

}  // namespace convkit::eval
