#include "eval/test_sets.h"

#include <torch/torch.h>

#include "data/transforms.h"
#include "train/pytorch_random.h"
#include "util/format.h"

namespace convkit::eval {

TestResults evaluate_test_sets(models::ClassifierImpl& model, const data::Split& test, const data::Normalization& norm,
                               double rotation, int64_t batch_size, const torch::Device& device, bool progress,
                               const dist::ProcessGroup* group) {
  TestResults r;
  train::draw_loader_base_seed();
  r.test =
      train::evaluate(model, data::to_model_input(test.images, norm), test.labels, batch_size, device, progress, group);
  train::draw_loader_base_seed();
  const torch::Tensor angles = data::draw_rotation_angles(test.images.size(0), rotation);
  const torch::Tensor rotated = data::rotate(test.images.to(torch::kFloat), angles);
  r.rotated_test =
      train::evaluate(model, data::to_model_input(rotated, norm), test.labels, batch_size, device, progress, group);
  return r;
}

std::string test_lines(const TestResults& r) {
  return strprintf("Test Loss: %.3f | Test Acc: %.2f%%\n", r.test.loss, r.test.acc * 100) +
         strprintf("Rotated Test Loss: %.3f | Rotated Test Acc: %.2f%%\n", r.rotated_test.loss,
                   r.rotated_test.acc * 100);
}

}  // namespace convkit::eval
