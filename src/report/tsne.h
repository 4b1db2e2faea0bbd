// Barnes-Hut t-SNE: the report's 2-D map of the hidden representation.
#pragma once

#include <torch/types.h>

namespace convkit::report {

struct TsneOptions {
  double perplexity = 30;  // scikit-learn's default
  int iterations = 1000;   // scikit-learn's default n_iter
  double early_exaggeration = 12;
  int exaggeration_iterations = 250;
  double theta = 0.5;  // Barnes-Hut accuracy
};

// Barnes-Hut t-SNE to 2-D (van der Maaten 2014, as scikit-learn's default method), PCA
// initialised, hence deterministic for a given input.
torch::Tensor tsne_2d(const torch::Tensor& x, const TsneOptions& options = {});

}  // namespace convkit::report
