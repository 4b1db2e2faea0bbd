// A trained network as exporters see it: its inference graph (models/inference_graph.h) and
// the tensors that graph names, optionally with batch norm folded into the layer before it.
#pragma once

#include <torch/types.h>

#include <map>
#include <string>

#include "models/classifier.h"
#include "models/inference_graph.h"

namespace convkit::deploy {

struct ExportableNetwork {
  models::InferenceGraph graph;
  std::map<std::string, torch::Tensor> tensors;  // state_dict name -> CPU tensor (conv1.weight, ...)
};

// The network's graph and tensors, checked against its own forward pass on a few random
// inputs: an Error when they disagree, so no exporter writes a graph that is not the network.
ExportableNetwork exportable_network(models::ClassifierImpl& model, bool fold_bn);

// The graph's forward pass in LibTorch's own operations: what every exporter must reproduce.
torch::Tensor run_network(const ExportableNetwork& network, const torch::Tensor& x);

// The tensor `name`, or an Error naming it when the graph refers to a tensor the network lacks.
const torch::Tensor& tensor_of(const ExportableNetwork& network, const std::string& name);

}  // namespace convkit::deploy
