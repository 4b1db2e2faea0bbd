// Class probabilities and hidden features of a trained network over images.
#pragma once

#include <torch/types.h>

#include "data/normalization.h"
#include "models/classifier.h"

namespace convkit::eval {

struct Predictions {
  torch::Tensor probabilities;  // float [N, classes]
  torch::Tensor predicted;      // int64 [N]
  torch::Tensor hidden;         // float [N, H], the model's hidden representation
};

// Raw-pixel images [N, C, H, W] (0..255), in batches.
Predictions predict_all(models::ClassifierImpl& model, const torch::Tensor& pixels, const data::Normalization& norm,
                        const torch::Device& device);

// Softmax probabilities [N, classes] for raw-pixel images [N, C, H, W] (0..255), as one batch.
torch::Tensor predict_probabilities(models::ClassifierImpl& model, const torch::Tensor& pixels,
                                    const data::Normalization& norm, const torch::Device& device);

}  // namespace convkit::eval
