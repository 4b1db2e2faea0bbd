// The network as a TorchScript module that torch.jit.load (Python) and torch::jit::load (C++)
// read without convkit: its parameters under their state_dict names, forward(x) in TorchScript.
#pragma once

#include <string>

#include "checkpoint/model_info.h"
#include "deploy/export_settings.h"
#include "deploy/exportable_network.h"

namespace convkit::deploy {

// The serialised module (the zip archive torch.jit.save writes). The module has the attributes
// `classes` (list of str), `mean` and `std` (the normalisation), and `with_preprocessing`.
std::string torchscript_module_bytes(const ExportableNetwork& network, const checkpoint::CheckpointInfo& info,
                                     const ExportSettings& settings);

// The TorchScript source of forward(), from the graph.
std::string torchscript_forward_source(const ExportableNetwork& network, const checkpoint::CheckpointInfo& info,
                                       const ExportSettings& settings);

}  // namespace convkit::deploy
