// Accuracy against a fixed rotation angle: the tutorial's exercise of how far a network's
// accuracy survives turned images.
#pragma once

#include <vector>

#include "data/dataset.h"
#include "data/normalization.h"
#include "models/classifier.h"

namespace convkit::eval {

inline constexpr int64_t kRotationImages = 2000;  // the first N test images make the curve

struct RotationPoint {
  double degrees = 0;
  double accuracy = 0;
};

// 0, 15, ..., 180 degrees.
std::vector<double> rotation_curve_angles();

// Accuracy with every image rotated by the same angle, for each angle given.
std::vector<RotationPoint> accuracy_vs_rotation(models::ClassifierImpl& model, const data::Split& test,
                                                const data::Normalization& norm, const std::vector<double>& angles,
                                                const torch::Device& device);

}  // namespace convkit::eval
