// What `convkit export` writes: the format and the options that shape the exported graph.
#pragma once

#include <string>

namespace convkit::deploy {

enum class ExportFormat { Onnx, TorchScript };
ExportFormat parse_export_format(const std::string& value);  // "onnx" | "torchscript"

// The element type of the raw pixels a graph with preprocessing takes.
enum class PixelType { Float, Uint8 };
PixelType parse_pixel_type(const std::string& value);  // "float" | "uint8"

struct ExportSettings {
  // The graph takes raw pixels (0..255) and applies the training normalisation itself.
  bool with_preprocessing = false;
  PixelType pixel_type = PixelType::Float;  // only with preprocessing
  bool softmax = false;                     // probabilities instead of logits
  bool fold_bn = false;                     // batch norm folded into the layer before it
};

// Throws an Error naming the flag when the combination cannot be exported.
void check_export_settings(const ExportSettings& settings);

// The ONNX operator set the exporter writes: the newest one OpenCV 4.6's importer reads in
// full, and the first with Softmax over one axis.
inline constexpr int kOnnxOpset = 13;

}  // namespace convkit::deploy
