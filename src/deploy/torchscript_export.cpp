#include "deploy/torchscript_export.h"

#include <torch/script.h>

#include <sstream>

#include "util/error.h"
#include "util/format.h"

namespace convkit::deploy {
namespace {

using Kind = models::InferenceOp::Kind;

std::string activation_call(const std::string& name) {
  if (name == "relu") return "torch.relu(x)";
  if (name == "gelu") return "torch.gelu(x)";
  if (name == "tanh") return "torch.tanh(x)";
  if (name == "elu") return strprintf("torch.elu(x, %.17g)", models::kEluAlpha);
  if (name == "silu") return "torch.silu(x)";
  if (name == "lrelu") return strprintf("torch.leaky_relu(x, %.17g)", models::kLeakyReluSlope);
  throw Error("export: activation '" + name + "' has no TorchScript form");
}

std::string op_line(const models::InferenceOp& op) {
  const std::string m = "self." + op.module;
  switch (op.kind) {
    case Kind::Conv:
      return strprintf("torch.conv2d(x, %s.weight, %s.bias, [%lld, %lld], [%lld, %lld])", m.c_str(), m.c_str(),
                       static_cast<long long>(op.stride), static_cast<long long>(op.stride),
                       static_cast<long long>(op.padding), static_cast<long long>(op.padding));
    case Kind::BatchNorm:
      return strprintf(
          "torch.batch_norm(x, %s.weight, %s.bias, %s.running_mean, %s.running_var, False, 0.0, %.17g, False)",
          m.c_str(), m.c_str(), m.c_str(), m.c_str(), op.eps);
    case Kind::Linear:
      return strprintf("torch.linear(x, %s.weight, %s.bias)", m.c_str(), m.c_str());
    case Kind::MaxPool:
    case Kind::AvgPool:
      return strprintf("torch.%s(x, [%lld, %lld], [%lld, %lld])",
                       op.kind == Kind::MaxPool ? "max_pool2d" : "avg_pool2d", static_cast<long long>(op.kernel),
                       static_cast<long long>(op.kernel), static_cast<long long>(op.kernel),
                       static_cast<long long>(op.kernel));
    case Kind::Flatten:
      return "torch.flatten(x, 1)";
    case Kind::Activation:
      return activation_call(op.activation);
  }
  return "x";
}

// The tensors of each module prefix ("conv1" -> {weight, bias}), as submodules so that the
// module's state_dict names are model.pt's.
torch::jit::Module build_module(const ExportableNetwork& net, const std::shared_ptr<torch::jit::CompilationUnit>& cu) {
  torch::jit::Module root(c10::QualifiedName("__torch__.convkit.Classifier"), cu);
  std::map<std::string, torch::jit::Module> children;
  for (const auto& [name, tensor] : net.tensors) {
    const size_t dot = name.rfind('.');
    if (dot == std::string::npos) throw Error("export: tensor '" + name + "' belongs to no layer");
    const std::string module = name.substr(0, dot), part = name.substr(dot + 1);
    auto it = children.find(module);
    if (it == children.end())
      it = children.emplace(module, torch::jit::Module(c10::QualifiedName("__torch__.convkit." + module), cu)).first;
    const bool is_buffer = part.rfind("running_", 0) == 0 || part == "num_batches_tracked";
    it->second.register_parameter(part, tensor.clone(), is_buffer);
  }
  for (auto& [name, child] : children) root.register_module(name, child);
  return root;
}

// A number for one channel; a [C, 1, 1] float tensor for more, which broadcasts over NCHW input.
// %.9g gives each float back exactly.
std::string per_channel_source(const std::vector<float>& values) {
  if (values.size() == 1) return strprintf("%.9g", values[0]);
  std::vector<std::string> parts;
  for (const float v : values) parts.push_back(strprintf("%.9g", v));
  return "torch.tensor([" + join(parts, ", ") + "]).view(-1, 1, 1)";
}

// A float attribute for one channel (as convkit has always written it), a list for more.
void register_per_channel(torch::jit::Module& module, const std::string& name, const std::vector<float>& values) {
  if (values.size() == 1) {
    module.register_attribute(name, c10::FloatType::get(), static_cast<double>(values[0]));
    return;
  }
  c10::List<double> list;
  for (const float v : values) list.push_back(v);
  module.register_attribute(name, c10::ListType::ofFloats(), list);
}

}  // namespace

std::string torchscript_forward_source(const ExportableNetwork& net, const checkpoint::CheckpointInfo& info,
                                       const ExportSettings& settings) {
  std::ostringstream src;
  src << "def forward(self, x):\n";
  if (settings.with_preprocessing)  // raw pixels, uint8 or float; the same ops as the training input
    src << "    x = (x.float() / 255.0 - " << per_channel_source(info.normalization.mean) << ") / "
        << per_channel_source(info.normalization.std) << "\n";
  for (const auto& op : net.graph.ops) src << "    x = " << op_line(op) << "\n";
  if (settings.softmax) src << "    x = torch.softmax(x, 1)\n";
  src << "    return x\n";
  return src.str();
}

std::string torchscript_module_bytes(const ExportableNetwork& net, const checkpoint::CheckpointInfo& info,
                                     const ExportSettings& settings) {
  check_export_settings(settings);
  auto cu = std::make_shared<torch::jit::CompilationUnit>();
  torch::jit::Module module = build_module(net, cu);
  module.register_attribute("classes", c10::ListType::ofStrings(),
                            c10::List<std::string>(std::vector<std::string>(info.classes)));
  register_per_channel(module, "mean", info.normalization.mean);
  register_per_channel(module, "std", info.normalization.std);
  module.register_attribute("with_preprocessing", c10::BoolType::get(), settings.with_preprocessing);
  module.register_attribute("softmax", c10::BoolType::get(), settings.softmax);
  try {
    module.define(torchscript_forward_source(net, info, settings));
  } catch (const std::exception& e) {
    throw Error(std::string("export: TorchScript refuses the generated forward: ") + first_line(e.what()));
  }
  module.eval();
  std::ostringstream out;
  module.save(out);
  return out.str();
}

}  // namespace convkit::deploy
