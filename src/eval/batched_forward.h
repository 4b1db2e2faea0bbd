// Inference over many images: the one loop behind predictions, the rotation curve and the
// report's analyses.
#pragma once

#include <torch/types.h>

#include <functional>

#include "data/normalization.h"
#include "models/classifier.h"

namespace convkit::eval {

// A few hundred images per batch: oneDNN's 1-channel convolution slows down sharply on much
// larger ones, and smaller ones pay the per-batch overhead more often.
inline constexpr int64_t kInferenceBatch = 256;

using PixelTransform = std::function<torch::Tensor(const torch::Tensor& pixels)>;

// Runs `model` in eval and inference mode over raw-pixel images ([N,H,W] or [N,1,H,W], 0..255)
// in batches, each transformed (e.g. rotated) when a transform is given and then normalised;
// hands `consume` the index of each batch's first image and the model's output for it. Only a
// batch at a time is transformed, so memory does not grow with N.
void forward_in_batches(models::ClassifierImpl& model, const torch::Tensor& pixels, const data::Normalization& norm,
                        const torch::Device& device,
                        const std::function<void(int64_t start, const models::Output& output)>& consume,
                        int64_t batch_size = kInferenceBatch, const PixelTransform& transform = {});

}  // namespace convkit::eval
