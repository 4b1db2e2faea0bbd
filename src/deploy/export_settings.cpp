#include "deploy/export_settings.h"

#include "util/error.h"

namespace convkit::deploy {

ExportFormat parse_export_format(const std::string& value) {
  if (value == "onnx") return ExportFormat::Onnx;
  if (value == "torchscript") return ExportFormat::TorchScript;
  throw Error("--format: expected onnx or torchscript, got '" + value + "'");
}

PixelType parse_pixel_type(const std::string& value) {
  if (value == "float") return PixelType::Float;
  if (value == "uint8") return PixelType::Uint8;
  throw Error("--pixel-type: expected float or uint8, got '" + value + "'");
}

void check_export_settings(const ExportSettings& settings) {
  if (settings.pixel_type == PixelType::Uint8 && !settings.with_preprocessing)
    throw Error("--pixel-type uint8 needs --with-preprocessing: without it the graph takes normalised floats");
}

}  // namespace convkit::deploy
