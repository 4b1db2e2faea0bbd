// Image files turned into FashionMNIST-like inputs: grey, 28x28, a light object on a black
// background.
#pragma once

#include <torch/types.h>

#include <string>

#include "data/image_file.h"

namespace convkit::data {

enum class Invert { Auto, Yes, No };
Invert parse_invert(const std::string& value);  // "auto" | "yes" | "no"

// True when the border is mostly light, i.e. a photo of a dark object on a light background.
bool has_light_background(const GreyImage& image);

// Float [28,28] with raw 0..255 values: inverted if asked (or if Auto finds a light
// background), padded to a square with the background colour, then resized (area averaging
// when shrinking, bilinear when enlarging).
torch::Tensor to_mnist_pixels(const GreyImage& image, Invert invert);

// uint8 [height, width]: the picture resized as torchvision's Resize((height, width)) resizes a
// PIL image (bilinear, antialiased when shrinking), rounded to the nearest level.
torch::Tensor resize_grey(const GreyImage& image, int64_t height, int64_t width);

}  // namespace convkit::data
