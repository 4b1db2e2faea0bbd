#include "deploy/onnx_export.h"

#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/torch.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "checkpoint/model_info.h"
#include "util/error.h"

namespace convkit::deploy {
namespace {

using Kind = models::InferenceOp::Kind;

// Appends nodes to a graph, each reading the previous node's output: the network is a chain.
class GraphBuilder {
 public:
  GraphBuilder(onnx::GraphProto& graph, std::string input) : graph_(graph), value_(std::move(input)) {}

  onnx::NodeProto& add(const std::string& op, std::vector<std::string> extra_inputs = {}) {
    onnx::NodeProto& node = *graph_.add_node();
    node.set_op_type(op);
    node.set_name(op + "_" + std::to_string(graph_.node_size()));
    node.add_input(value_);
    for (const auto& in : extra_inputs) node.add_input(in);
    value_ = node.name();
    node.add_output(value_);
    return node;
  }

  // A float constant among the initializers: a scalar when `values` has one element.
  std::string constant(const std::string& name, const torch::Tensor& values) {
    if (!constants_.insert(name).second) return name;  // e.g. GELU's constants, shared by its layers
    const torch::Tensor t = values.to(torch::kFloat).contiguous();
    onnx::TensorProto& proto = *graph_.add_initializer();
    proto.set_name(name);
    proto.set_data_type(onnx::TensorProto::FLOAT);
    for (const int64_t d : t.sizes()) proto.add_dims(d);
    proto.set_raw_data(t.data_ptr<float>(), t.numel() * sizeof(float));
    return name;
  }
  std::string scalar(const std::string& name, float value) { return constant(name, torch::tensor(value)); }

  const std::string& value() const { return value_; }
  void rename_output(const std::string& name) {
    graph_.mutable_node(graph_.node_size() - 1)->set_output(0, name);
    value_ = name;
  }

 private:
  onnx::GraphProto& graph_;
  std::string value_;
  std::set<std::string> constants_;
};

void set_ints(onnx::NodeProto& node, const std::string& name, std::vector<int64_t> values) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INTS);
  for (const int64_t v : values) a.add_ints(v);
}

void set_int(onnx::NodeProto& node, const std::string& name, int64_t value) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::INT);
  a.set_i(value);
}

void set_float(onnx::NodeProto& node, const std::string& name, float value) {
  onnx::AttributeProto& a = *node.add_attribute();
  a.set_name(name);
  a.set_type(onnx::AttributeProto::FLOAT);
  a.set_f(value);
}

// Opset 13 has no GELU or SiLU: they are written out as the operators they are made of.
void add_activation(GraphBuilder& b, const std::string& name) {
  if (name == "relu") {
    b.add("Relu");
  } else if (name == "tanh") {
    b.add("Tanh");
  } else if (name == "elu") {
    set_float(b.add("Elu"), "alpha", models::kEluAlpha);
  } else if (name == "lrelu") {
    set_float(b.add("LeakyRelu"), "alpha", models::kLeakyReluSlope);
  } else if (name == "silu") {  // x * sigmoid(x)
    const std::string x = b.value();
    b.add("Sigmoid");
    b.add("Mul", {x});
  } else if (name == "gelu") {  // x * (erf(x / sqrt 2) + 1) / 2, LibTorch's exact GELU
    const std::string x = b.value();
    b.add("Mul", {b.scalar("gelu_1_over_sqrt2", static_cast<float>(M_SQRT1_2))});
    b.add("Erf");
    b.add("Add", {b.scalar("gelu_one", 1.f)});
    b.add("Mul", {x});
    b.add("Mul", {b.scalar("gelu_half", 0.5f)});
  } else {
    throw Error("export: activation '" + name + "' has no ONNX form");
  }
}

void add_op(GraphBuilder& b, const ExportableNetwork& net, const models::InferenceOp& op) {
  auto param = [&](const char* part) { return b.constant(op.module + part, tensor_of(net, op.module + part)); };
  switch (op.kind) {
    case Kind::Conv: {
      const torch::Tensor& w = tensor_of(net, op.module + ".weight");
      onnx::NodeProto& node = b.add("Conv", {param(".weight"), param(".bias")});
      set_ints(node, "kernel_shape", {w.size(2), w.size(3)});
      set_ints(node, "strides", {op.stride, op.stride});
      set_ints(node, "pads", {op.padding, op.padding, op.padding, op.padding});
      break;
    }
    case Kind::BatchNorm: {
      onnx::NodeProto& node = b.add("BatchNormalization",
                                    {param(".weight"), param(".bias"), param(".running_mean"), param(".running_var")});
      set_float(node, "epsilon", static_cast<float>(op.eps));
      break;
    }
    case Kind::Linear:
      set_int(b.add("Gemm", {param(".weight"), param(".bias")}), "transB", 1);
      break;
    case Kind::MaxPool:
    case Kind::AvgPool: {
      onnx::NodeProto& node = b.add(op.kind == Kind::MaxPool ? "MaxPool" : "AveragePool");
      set_ints(node, "kernel_shape", {op.kernel, op.kernel});
      set_ints(node, "strides", {op.kernel, op.kernel});
      break;
    }
    case Kind::Flatten:
      set_int(b.add("Flatten"), "axis", 1);
      break;
    case Kind::Activation:
      add_activation(b, op.activation);
      break;
  }
}

// A scalar for one channel, else [C, 1, 1], which broadcasts over NCHW input.
torch::Tensor per_channel(const std::vector<float>& values) {
  const torch::Tensor t = torch::tensor(values, torch::kFloat);
  return values.size() == 1 ? t[0] : t.view({-1, 1, 1});
}

void set_tensor_type(onnx::ValueInfoProto& value, const std::string& name, int element_type,
                     const std::vector<int64_t>& dims) {
  value.set_name(name);
  onnx::TypeProto_Tensor& t = *value.mutable_type()->mutable_tensor_type();
  t.set_elem_type(element_type);
  t.mutable_shape()->add_dim()->set_dim_param("batch");
  for (const int64_t d : dims) t.mutable_shape()->add_dim()->set_dim_value(d);
}

void add_metadata(onnx::ModelProto& model, const std::string& key, const std::string& value) {
  onnx::StringStringEntryProto& entry = *model.add_metadata_props();
  entry.set_key(key);
  entry.set_value(value);
}

}  // namespace

std::string onnx_model_bytes(const ExportableNetwork& net, const checkpoint::CheckpointInfo& info,
                             const ExportSettings& settings) {
  check_export_settings(settings);
  onnx::ModelProto model;
  model.set_ir_version(7);  // the IR version of opset 13
  model.set_producer_name("convkit");
  model.set_model_version(1);
  model.add_opset_import()->set_version(kOnnxOpset);
  onnx::GraphProto& graph = *model.mutable_graph();
  graph.set_name(info.model);

  const auto& g = net.graph;
  const bool uint8 = settings.with_preprocessing && settings.pixel_type == PixelType::Uint8;
  const std::string input = settings.with_preprocessing ? "pixels" : "input";
  set_tensor_type(*graph.add_input(), input, uint8 ? onnx::TensorProto::UINT8 : onnx::TensorProto::FLOAT,
                  {g.channels, g.height, g.width});
  GraphBuilder b(graph, input);
  if (uint8) set_int(b.add("Cast"), "to", onnx::TensorProto::FLOAT);
  if (settings.with_preprocessing) {  // (x / 255 - mean) / std, as the training input was made
    b.add("Div", {b.scalar("pixel_scale", 255.f)});
    b.add("Sub", {b.constant("normalization_mean", per_channel(info.normalization.mean))});
    b.add("Div", {b.constant("normalization_std", per_channel(info.normalization.std))});
  }
  for (const auto& op : g.ops) add_op(b, net, op);
  if (settings.softmax) set_int(b.add("Softmax"), "axis", 1);
  const std::string output = settings.softmax ? "probabilities" : "logits";
  b.rename_output(output);
  set_tensor_type(*graph.add_output(), output, onnx::TensorProto::FLOAT, {g.classes});

  add_metadata(model, "classes", nlohmann::json(info.classes).dump());
  add_metadata(model, "convkit_model", info.model);
  add_metadata(model, "normalization", checkpoint::normalization_json(info.normalization).dump());
  add_metadata(model, "preprocessing", settings.with_preprocessing ? "raw pixels 0..255" : "normalised input");
  try {
    onnx::checker::check_model(model);
  } catch (const std::exception& e) {
    throw Error(std::string("export: the ONNX checker refuses the graph: ") + first_line(e.what()));
  }
  std::string bytes;
  if (!model.SerializeToString(&bytes)) throw Error("export: the ONNX model could not be serialised");
  return bytes;
}

}  // namespace convkit::deploy
