#include "train/inference.h"

#include "data/transforms.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::train {

LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir) {
  const StateDict state = read_state_dict(checkpoint);
  std::optional<CheckpointInfo> info = read_checkpoint_info(checkpoint);
  if (!info && model_name.empty()) {
    throw file_error(checkpoint.string(),
                     "no " + info_path_for(checkpoint).filename().string() + " beside it to name the architecture; pass --model");
  }
  if (!info) {
    const data::Split train = data::load_split(data_dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte");
    const data::Normalization norm = data::normalization_from(train.images);
    info = CheckpointInfo{model_name, data::kNumClasses, norm.mean, norm.std};
  }
  if (!model_name.empty()) info->model = model_name;
  LoadedModel loaded{models::make_model(info->model, info->num_classes), *info};
  load_state_dict(*loaded.model, state, checkpoint.string());
  loaded.model->eval();
  return loaded;
}

TestResults evaluate_test_sets(models::ClassifierImpl& model, const data::Split& test, data::Normalization norm,
                               double rotation, int64_t batch_size, const torch::Device& device, bool progress) {
  TestResults r;
  draw_loader_base_seed();
  r.test = evaluate(model, data::to_model_input(test.images, norm), test.labels, batch_size, device, progress);
  draw_loader_base_seed();
  const torch::Tensor angles = data::draw_rotation_angles(test.images.size(0), rotation);
  const torch::Tensor rotated = data::rotate(test.images.unsqueeze(1).to(torch::kFloat), angles);
  r.rotated_test = evaluate(model, data::to_model_input(rotated, norm), test.labels, batch_size, device, progress);
  return r;
}

std::string test_lines(const TestResults& r) {
  return strprintf("Test Loss: %.3f | Test Acc: %.2f%%\n", r.test.loss, r.test.acc * 100) +
         strprintf("Rotated Test Loss: %.3f | Rotated Test Acc: %.2f%%\n", r.rotated_test.loss, r.rotated_test.acc * 100);
}

torch::Tensor predict_probabilities(models::ClassifierImpl& model, const torch::Tensor& pixels,
                                    data::Normalization norm, const torch::Device& device) {
  torch::InferenceMode inference;
  model.eval();
  const torch::Tensor logits = model.forward(data::to_model_input(pixels, norm).to(device)).logits;
  return torch::softmax(logits, 1).cpu();
}

}  // namespace convkit::train
