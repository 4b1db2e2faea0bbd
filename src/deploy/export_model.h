// `convkit export`: a trained network written as ONNX or TorchScript, in one atomic write.
#pragma once

#include <filesystem>
#include <string>

#include "deploy/export_settings.h"
#include "eval/load_model.h"

namespace convkit::deploy {

struct ExportSummary {
  std::string format;          // "onnx" | "torchscript"
  std::filesystem::path file;  // what was written
  int64_t parameters = 0;      // numbers in the exported tensors
  int64_t bytes = 0;           // size of the file
  std::string input, output;   // e.g. "pixels float [batch,1,28,28]", "logits [batch,10]"
};

// Writes `loaded` to `out` (through a temporary file and a rename: no half-written file).
ExportSummary export_model(eval::LoadedModel& loaded, ExportFormat format, const std::filesystem::path& out,
                           const ExportSettings& settings);

}  // namespace convkit::deploy
