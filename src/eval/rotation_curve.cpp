#include "eval/rotation_curve.h"

#include <torch/torch.h>

#include "data/transforms.h"
#include "eval/batched_forward.h"

namespace convkit::eval {

std::vector<double> rotation_curve_angles() {
  std::vector<double> angles;
  for (int a = 0; a <= 180; a += 15) angles.push_back(a);
  return angles;
}

std::vector<RotationPoint> accuracy_vs_rotation(models::ClassifierImpl& model, const data::Split& test,
                                                const data::Normalization& norm, const std::vector<double>& angles,
                                                const torch::Device& device) {
  const torch::Tensor pixels = test.images.to(torch::kFloat);
  const int64_t n = pixels.size(0);
  std::vector<RotationPoint> curve;
  for (double angle : angles) {
    PixelTransform rotation;
    if (angle != 0) {
      rotation = [angle](const torch::Tensor& batch) {
        return data::rotate(batch, torch::full({batch.size(0)}, angle, torch::kDouble));
      };
    }
    int64_t correct = 0;
    forward_in_batches(
        model, pixels, norm, device,
        [&](int64_t start, const models::Output& out) {
          const torch::Tensor labels = test.labels.slice(0, start, start + out.logits.size(0));
          correct += out.logits.argmax(1).cpu().eq(labels).sum().item<int64_t>();
        },
        kInferenceBatch, rotation);
    curve.push_back({angle, static_cast<double>(correct) / n});
  }
  return curve;
}

}  // namespace convkit::eval
