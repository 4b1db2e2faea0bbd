// The network as an ONNX model, built with the ONNX project's own protobuf classes and
// validated by its checker before it is written.
#pragma once

#include <filesystem>
#include <string>

#include "checkpoint/model_info.h"
#include "deploy/export_settings.h"
#include "deploy/exportable_network.h"

namespace convkit::deploy {

// The serialised ModelProto (opset kOnnxOpset, dynamic batch), with model.json's facts (classes,
// normalisation, architecture) in metadata_props. An Error when the checker refuses it.
std::string onnx_model_bytes(const ExportableNetwork& network, const checkpoint::CheckpointInfo& info,
                             const ExportSettings& settings);

}  // namespace convkit::deploy
