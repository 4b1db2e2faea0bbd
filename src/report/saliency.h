// Where a classifier looks: gradient saliency maps (Simonyan et al., 2014) and their overlay on
// the image.
#pragma once

#include <torch/types.h>

#include "models/classifier.h"

namespace convkit::report {

// |d logit / d input| of one class per image, the largest over the channels, scaled per image to
// a peak of 1 (a gradient that is zero everywhere stays 0): float [N, H, W] on the CPU. `inputs`
// is the model's input [N, C, H, W] (normalised, on the model's device); `classes` [N] names the
// logit of each image, the model's own prediction when undefined. The model runs in eval mode;
// its training mode, its parameters' gradients and their requires_grad flags end as they began.
torch::Tensor saliency_maps(models::ClassifierImpl& model, const torch::Tensor& inputs,
                            const torch::Tensor& classes = {});

// A grey image [H, W] (0..255) with `saliency` [H, W] (0..1) laid over it in a red-to-yellow
// heat colour, more opaque where the saliency is higher: float RGB [3, H, W], 0..255, as
// plot_image_grid's RGB panels take.
torch::Tensor saliency_overlay(const torch::Tensor& grey, const torch::Tensor& saliency);

}  // namespace convkit::report
