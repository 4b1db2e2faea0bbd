// Image files turned into a network's input: its channels and size, and for grey networks
// (FashionMNIST-like) a light object on a black background.
#pragma once

#include <torch/types.h>

#include <string>

#include "data/dataset.h"
#include "data/image_file.h"

namespace convkit::data {

enum class Invert { Auto, Yes, No };
Invert parse_invert(const std::string& value);  // "auto" | "yes" | "no"

// True when the border is mostly light (by its grey level), i.e. a photo of a dark object on a
// light background.
bool has_light_background(const Picture& image);

// The picture's interleaved channels as planes, [C, H, W], written to `out`
// (channels * height * width bytes).
void copy_planar(const Picture& image, uint8_t* out);

// uint8 [C, H, W] of the picture as it is.
torch::Tensor picture_tensor(const Picture& image);

// Float [C, H, W] with raw 0..255 values in `shape`'s channels and size. For a grey network
// (FashionMNIST's kind: light objects on black) the picture is inverted if asked (or if Auto
// finds a light background), padded to a square with the background colour, then resized (area
// averaging when shrinking, bilinear when enlarging). A colour network's picture is inverted
// only when asked, and resized as torchvision's Resize((H, W)) resizes it.
torch::Tensor to_model_pixels(const Picture& image, Invert invert, ImageShape shape);

}  // namespace convkit::data
