// What the report shows, computed on tensors: predictions and hidden features over a data set,
// the classification report (as scikit-learn's), PCA, t-SNE and accuracy under fixed rotations.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "data/dataset.h"
#include "models/models.h"

namespace convkit::report {

struct Predictions {
  torch::Tensor probabilities;  // float [N, classes]
  torch::Tensor predicted;      // int64 [N]
  torch::Tensor hidden;         // float [N, H], the model's hidden representation
};

inline constexpr int64_t kEvalBatch = 256;

// One inference pass over raw-pixel images [N, 28, 28] (0..255) in batches.
Predictions predict_all(models::ClassifierImpl& model, const torch::Tensor& pixels, data::Normalization norm,
                        const torch::Device& device, int64_t batch_size = kEvalBatch);

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;
};

// scikit-learn's classification_report: per class, macro and weighted averages, accuracy.
// Precision or recall with an empty denominator count as 0, as scikit-learn's default does.
struct ClassificationReport {
  torch::Tensor confusion;  // int64 [classes, classes]; row = true class, column = predicted
  std::vector<ClassScores> per_class;
  ClassScores macro, weighted;
  double accuracy = 0;
};
ClassificationReport classification_report(const torch::Tensor& truth, const torch::Tensor& predicted,
                                           int64_t classes);

// Projection of the rows of `x` [N, D] onto their first two principal components.
torch::Tensor pca_2d(const torch::Tensor& x);

struct TsneOptions {
  double perplexity = 30;        // scikit-learn's default
  int iterations = 1000;         // scikit-learn's default n_iter
  double early_exaggeration = 12;
  int exaggeration_iterations = 250;
  double theta = 0.5;            // Barnes-Hut accuracy
};

// Barnes-Hut t-SNE to 2-D (van der Maaten 2014, as scikit-learn's default method), PCA
// initialised, hence deterministic for a given input.
torch::Tensor tsne_2d(const torch::Tensor& x, const TsneOptions& options = {});

struct RotationPoint {
  double degrees = 0;
  double accuracy = 0;
};

// Accuracy with every image rotated by the same angle, for each angle given.
std::vector<RotationPoint> accuracy_vs_rotation(models::ClassifierImpl& model, const data::Split& test,
                                                data::Normalization norm, const std::vector<double>& angles,
                                                const torch::Device& device);

}  // namespace convkit::report
