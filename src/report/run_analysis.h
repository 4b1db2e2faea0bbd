// What a run's report shows, computed from the best model and the test images: predictions,
// the classification report, calibration, the confident mistakes and their saliency, the
// rotation curve, PCA and t-SNE of the hidden representation.
#pragma once

#include <torch/types.h>

#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "data/dataset.h"
#include "data/normalization.h"
#include "eval/predict.h"
#include "eval/rotation_curve.h"
#include "models/classifier.h"
#include "report/analysis.h"
#include "report/calibration.h"

namespace convkit::report {

inline constexpr int64_t kPcaImages = 5000;     // first N test images in pca.png
inline constexpr int64_t kTsneImages = 1000;    // first N test images in tsne.png
inline constexpr int64_t kMinTsneImages = 100;  // fewer give no t-SNE figure
inline constexpr int64_t kMistakesShown = 25;   // in mistakes.png and saliency.png, a 5x5 grid

struct RunAnalysis {
  std::vector<std::string> class_names;  // index = label
  eval::Predictions predictions;         // over the whole test set
  ClassificationReport classes;
  Calibration calibration;                          // of `predictions`
  torch::Tensor confident_mistakes;                 // int64 [n <= kMistakesShown], most confident first
  torch::Tensor mistake_saliency;                   // float [n, H, W]: saliency_maps of their predicted class
  std::vector<eval::RotationPoint> rotation_curve;  // over the first kRotationImages
  int64_t rotation_images = 0;
  torch::Tensor pca;   // float [n, 2], the first kPcaImages
  torch::Tensor tsne;  // float [n, 2], the first kTsneImages; undefined with too few images
};

RunAnalysis analyse_run(models::ClassifierImpl& model, const data::Split& test,
                        const std::vector<std::string>& class_names, const data::Normalization& norm,
                        const torch::Device& device);

// The analyses as metrics.json records them: classes (the names, index = label), confusion_matrix, per_class (as
// scikit-learn's classification_report(output_dict=True)), calibration (calibration_json), rotation_curve, pca_images,
// tsne_images, rotation_images.
nlohmann::json analysis_metrics(const RunAnalysis& analysis);

}  // namespace convkit::report
