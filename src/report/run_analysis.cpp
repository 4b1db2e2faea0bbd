#include "report/run_analysis.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "report/saliency.h"
#include "report/tsne.h"
#include "util/interrupt.h"

namespace convkit::report {
namespace {

nlohmann::json scores_json(const ClassScores& s) {
  return {{"precision", s.precision}, {"recall", s.recall}, {"f1-score", s.f1}, {"support", s.support}};
}

// The saliency of the predicted class on each image of `indices`.
torch::Tensor saliency_of(models::ClassifierImpl& model, const data::Split& test, const torch::Tensor& indices,
                          const torch::Tensor& predicted, const data::Normalization& norm,
                          const torch::Device& device) {
  const torch::Tensor inputs = data::to_model_input(test.images.index_select(0, indices), norm).to(device);
  return saliency_maps(model, inputs, predicted.index_select(0, indices));
}

}  // namespace

RunAnalysis analyse_run(models::ClassifierImpl& model, const data::Split& test,
                        const std::vector<std::string>& class_names, const data::Normalization& norm,
                        const torch::Device& device) {
  RunAnalysis a;
  a.class_names = class_names;
  a.predictions = eval::predict_all(model, test.images, norm, device);
  a.classes = classification_report(test.labels, a.predictions.predicted, static_cast<int64_t>(class_names.size()));
  a.calibration = calibration(a.predictions.probabilities, test.labels);
  a.confident_mistakes = most_confident_mistakes(a.predictions.probabilities, test.labels, kMistakesShown);
  a.mistake_saliency = saliency_of(model, test, a.confident_mistakes, a.predictions.predicted, norm, device);
  const data::Split rotation_subset = data::first(test, eval::kRotationImages);
  a.rotation_images = rotation_subset.images.size(0);
  a.rotation_curve = eval::accuracy_vs_rotation(model, rotation_subset, norm, eval::rotation_curve_angles(), device);
  const torch::Tensor& hidden = a.predictions.hidden;
  a.pca = pca_2d(hidden.slice(0, 0, kPcaImages));
  const int64_t n_tsne = std::min<int64_t>(kTsneImages, hidden.size(0));
  stop_if_interrupted();  // t-SNE takes a while
  if (n_tsne > kMinTsneImages) a.tsne = tsne_2d(hidden.slice(0, 0, n_tsne));
  return a;
}

nlohmann::json analysis_metrics(const RunAnalysis& a) {
  const ClassificationReport& cr = a.classes;
  nlohmann::json per_class;
  const int64_t n = static_cast<int64_t>(a.class_names.size());
  for (int64_t k = 0; k < n; ++k) per_class[a.class_names[k]] = scores_json(cr.per_class[k]);
  per_class["accuracy"] = cr.accuracy;
  per_class["macro avg"] = scores_json(cr.macro);
  per_class["weighted avg"] = scores_json(cr.weighted);
  std::vector<std::vector<int64_t>> confusion(n);
  const auto counts = cr.confusion.accessor<int64_t, 2>();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t q = 0; q < n; ++q) confusion[t].push_back(counts[t][q]);
  nlohmann::json curve = nlohmann::json::array();
  for (const auto& point : a.rotation_curve)
    curve.push_back({{"degrees", point.degrees}, {"accuracy", point.accuracy}});
  return {{"classes", a.class_names},
          {"confusion_matrix", confusion},
          {"per_class", per_class},
          {"calibration", calibration_json(a.calibration)},
          {"rotation_curve", curve},
          {"pca_images", a.pca.size(0)},
          {"tsne_images", std::min<int64_t>(kTsneImages, a.predictions.hidden.size(0))},
          {"rotation_images", a.rotation_images}};
}

}  // namespace convkit::report
