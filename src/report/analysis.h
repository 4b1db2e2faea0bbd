// Statistics of a model's predictions: the classification report (as scikit-learn's), the
// confident mistakes and PCA.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace convkit::report {

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
ClassificationReport classification_report(const torch::Tensor& truth, const torch::Tensor& predicted, int64_t classes);

// The indices of at most `count` wrongly predicted images, the most confident (highest
// probability) first: int64 [n].
torch::Tensor most_confident_mistakes(const torch::Tensor& probabilities, const torch::Tensor& labels, int64_t count);

// Projection of the rows of `x` [N, D] onto their first two principal components.
torch::Tensor pca_2d(const torch::Tensor& x);

}  // namespace convkit::report
