#include "deploy/exportable_network.h"

#include <torch/torch.h>

#include "models/spec_net.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::deploy {
namespace {

using Kind = models::InferenceOp::Kind;
namespace F = torch::nn::functional;

// Conv or linear followed by batch norm becomes one layer: w * s, (b - mean) * s + beta with
// s = gamma / sqrt(var + eps), per output channel, computed in double.
void fold_batch_norms(ExportableNetwork& net) {
  std::vector<models::InferenceOp> ops;
  for (const auto& op : net.graph.ops) {
    if (op.kind != Kind::BatchNorm) {
      ops.push_back(op);
      continue;
    }
    if (ops.empty() || (ops.back().kind != Kind::Conv && ops.back().kind != Kind::Linear))
      throw Error("--fold-bn: batch norm '" + op.module + "' does not follow a convolution or a dense layer");
    const std::string& layer = ops.back().module;
    auto d = [&](const std::string& name) { return tensor_of(net, name).to(torch::kDouble); };
    const torch::Tensor scale = d(op.module + ".weight") / (d(op.module + ".running_var") + op.eps).sqrt();
    const torch::Tensor w = d(layer + ".weight");
    std::vector<int64_t> shape(w.dim(), 1);
    shape[0] = -1;
    net.tensors[layer + ".weight"] = (w * scale.view(shape)).to(torch::kFloat);
    net.tensors[layer + ".bias"] =
        ((d(layer + ".bias") - d(op.module + ".running_mean")) * scale + d(op.module + ".bias")).to(torch::kFloat);
    for (const char* part : {".weight", ".bias", ".running_mean", ".running_var", ".num_batches_tracked"})
      net.tensors.erase(op.module + part);
  }
  net.graph.ops = std::move(ops);
}

}  // namespace

const torch::Tensor& tensor_of(const ExportableNetwork& network, const std::string& name) {
  const auto it = network.tensors.find(name);
  if (it == network.tensors.end()) throw Error("export: the network has no tensor '" + name + "'");
  return it->second;
}

torch::Tensor run_network(const ExportableNetwork& net, const torch::Tensor& input) {
  auto t = [&](const std::string& module, const char* part) { return tensor_of(net, module + part); };
  torch::Tensor x = input;
  for (const auto& op : net.graph.ops) {
    switch (op.kind) {
      case Kind::Conv:
        x = F::conv2d(x, t(op.module, ".weight"),
                      F::Conv2dFuncOptions().bias(t(op.module, ".bias")).stride(op.stride).padding(op.padding));
        break;
      case Kind::BatchNorm:
        x = torch::batch_norm(x, t(op.module, ".weight"), t(op.module, ".bias"), t(op.module, ".running_mean"),
                              t(op.module, ".running_var"), false, 0.0, op.eps, false);
        break;
      case Kind::Linear:
        x = torch::linear(x, t(op.module, ".weight"), t(op.module, ".bias"));
        break;
      case Kind::MaxPool:
        x = F::max_pool2d(x, F::MaxPool2dFuncOptions(op.kernel));
        break;
      case Kind::AvgPool:
        x = F::avg_pool2d(x, F::AvgPool2dFuncOptions(op.kernel));
        break;
      case Kind::Flatten:
        x = x.flatten(1);
        break;
      case Kind::Activation:
        x = models::activate(op.activation, x);
        break;
    }
  }
  return x;
}

ExportableNetwork exportable_network(models::ClassifierImpl& model, bool fold_bn) {
  ExportableNetwork net{model.inference_graph(), {}};
  for (const auto& p : model.named_parameters()) net.tensors[p.key()] = p.value().detach().to(torch::kCPU);
  for (const auto& b : model.named_buffers()) net.tensors[b.key()] = b.value().detach().to(torch::kCPU);
  if (fold_bn) fold_batch_norms(net);

  // A fixed generator: the check must not move the caller's random stream.
  const auto& g = net.graph;
  torch::Generator gen = at::detail::createCPUGenerator(0x5eed);
  const torch::Tensor x = torch::randn({4, g.channels, g.height, g.width}, gen);
  torch::NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const torch::Device device = model.parameters().empty() ? torch::kCPU : model.parameters()[0].device();
  const torch::Tensor expected = model.forward(x.to(device)).logits.to(torch::kCPU);
  model.train(was_training);
  const torch::Tensor actual = run_network(net, x);
  if (actual.sizes() != expected.sizes()) throw Error("export: the exported graph gives outputs of another shape");
  const double error = (actual - expected).abs().max().item<double>();
  const double scale = std::max(1.0, expected.abs().max().item<double>());
  if (!(error <= 1e-4 * scale))
    throw Error(
        strprintf("export: the exported graph does not reproduce the network (largest difference %.3g)", error));
  return net;
}

}  // namespace convkit::deploy
