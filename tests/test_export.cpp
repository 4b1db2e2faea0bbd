// The exporters against the networks themselves: the graph, batch-norm folding, TorchScript
// loaded back with torch::jit::load, the ONNX model through the ONNX checker, and the errors.
#include <gtest/gtest.h>
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "data/normalization.h"
#include "deploy/export_model.h"
#include "deploy/exportable_network.h"
#include "deploy/onnx_export.h"
#include "deploy/torchscript_export.h"
#include "models/patch_whitening.h"
#include "models/registry.h"
#include "test_util.h"
#include "util/error.h"

using namespace convkit;
using convkit::testing::TempDir;

namespace {

const char* kAllTokens = "c8k3p1bn-gelu-mp2-c12k3s2p1-tanh-c12k3p1-ap2-elu-dr0.25-fc32bn-silu-fc24-lrelu-fc16";
const std::vector<std::string> kNetworks = {"lenet", "mlp", "lenet-bn", kAllTokens, "pw3-c8k3p1bn-mp2-fc16"};

// A network in eval mode whose batch norms have running statistics of their own (a few training
// steps' worth), so folding them and exporting them is not a test of the identity.
models::Classifier trained_looking(const std::string& name) {
  torch::manual_seed(3);
  models::Classifier model = models::make_model(name);
  for (const auto& module : model->modules(/*include_self=*/false))
    if (auto* whitening = module->as<models::PatchWhiteningImpl>())
      models::fit_patch_whitening(*whitening, torch::randn({64, 1, 28, 28}));
  model->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 5; ++i) model->forward(torch::randn({16, 1, 28, 28}) * 2 + 0.5);
  for (auto& p : model->named_parameters())
    if (p.key().rfind("bn_", 0) == 0) p.value().uniform_(0.5, 1.5);
  model->eval();
  return model;
}

checkpoint::CheckpointInfo info_for(const std::string& name) {
  checkpoint::CheckpointInfo info;
  info.model = name;
  info.normalization = {{0.2860f}, {0.3530f}};
  return info;
}

torch::jit::Module load_torchscript(const std::string& bytes) {
  std::istringstream in(bytes);
  return torch::jit::load(in);
}

torch::Tensor logits(models::ClassifierImpl& model, const torch::Tensor& x) {
  torch::NoGradGuard no_grad;
  return model.forward(x).logits;
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

}  // namespace

TEST(Export, GraphReproducesEveryNetworkWithAndWithoutFoldedBatchNorm) {
  for (const auto& name : kNetworks) {
    auto model = trained_looking(name);
    const torch::Tensor x = torch::randn({7, 1, 28, 28});
    for (const bool fold : {false, true}) {
      const deploy::ExportableNetwork net = deploy::exportable_network(*model, fold);
      EXPECT_LT(max_diff(deploy::run_network(net, x), logits(*model, x)), 1e-5) << name << " fold " << fold;
      bool has_bn = false;
      for (const auto& op : net.graph.ops) has_bn |= op.kind == models::InferenceOp::Kind::BatchNorm;
      EXPECT_EQ(has_bn, !fold && name != "lenet" && name != "mlp") << name;
    }
  }
}

TEST(Export, TorchScriptLoadsInLibTorchWithTheSameLogitsAndNames) {
  for (const auto& name : kNetworks) {
    auto model = trained_looking(name);
    const auto net = deploy::exportable_network(*model, false);
    torch::jit::Module ts = load_torchscript(deploy::torchscript_module_bytes(net, info_for(name), {}));
    const torch::Tensor x = torch::randn({9, 1, 28, 28});
    const torch::Tensor y = ts.forward({x}).toTensor();
    EXPECT_LT(max_diff(y, logits(*model, x)), 1e-5) << name;

    std::vector<std::string> names, expected;
    for (const auto& p : ts.named_parameters()) names.push_back(p.name);
    for (const auto& b : ts.named_buffers()) names.push_back(b.name);
    for (const auto& p : model->named_parameters()) expected.push_back(p.key());
    for (const auto& b : model->named_buffers()) expected.push_back(b.key());
    std::sort(names.begin(), names.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(names, expected) << name;
    const auto classes = ts.attr("classes").toList();
    ASSERT_EQ(classes.size(), 10u);
    EXPECT_EQ(classes.get(9).toStringRef(), "Ankle boot");
  }
}

TEST(Export, TorchScriptWithPreprocessingTakesRawPixelsOfEitherType) {
  auto model = trained_looking("lenet-bn");
  const auto info = info_for("lenet-bn");
  deploy::ExportSettings settings;
  settings.with_preprocessing = true;
  settings.softmax = true;
  const auto net = deploy::exportable_network(*model, true);
  torch::jit::Module ts = load_torchscript(deploy::torchscript_module_bytes(net, info, settings));
  const torch::Tensor pixels = torch::randint(0, 256, {6, 1, 28, 28}).to(torch::kUInt8);
  const torch::Tensor expected = torch::softmax(logits(*model, data::to_model_input(pixels, info.normalization)), 1);
  EXPECT_LT(max_diff(ts.forward({pixels}).toTensor(), expected), 1e-6);
  EXPECT_LT(max_diff(ts.forward({pixels.to(torch::kFloat)}).toTensor(), expected), 1e-6);
}

TEST(Export, ColourNetworksExportWithTheirShapeAndANormalisationPerChannel) {
  torch::manual_seed(5);
  auto model = models::make_model("lenet", 4, {3, 32, 24});
  model->eval();
  checkpoint::CheckpointInfo info;
  info.model = "lenet";
  info.num_classes = 4;
  info.classes = {"a", "b", "c", "d"};
  info.shape = {3, 32, 24};
  info.normalization = {{0.49f, 0.48f, 0.45f}, {0.25f, 0.24f, 0.26f}};
  deploy::ExportSettings settings;
  settings.with_preprocessing = true;
  const auto net = deploy::exportable_network(*model, false);
  torch::jit::Module ts = load_torchscript(deploy::torchscript_module_bytes(net, info, settings));
  const torch::Tensor pixels = torch::randint(0, 256, {5, 3, 32, 24}).to(torch::kUInt8);
  const torch::Tensor expected = logits(*model, data::to_model_input(pixels, info.normalization));
  EXPECT_LT(max_diff(ts.forward({pixels}).toTensor(), expected), 1e-5);
  EXPECT_EQ(ts.attr("mean").toDoubleList().size(), 3u);
  onnx::ModelProto proto;
  ASSERT_TRUE(proto.ParseFromString(deploy::onnx_model_bytes(net, info, settings)));
  EXPECT_NO_THROW(onnx::checker::check_model(proto));
  const auto& shape = proto.graph().input(0).type().tensor_type().shape();
  ASSERT_EQ(shape.dim_size(), 4);
  EXPECT_EQ(shape.dim(1).dim_value(), 3);
  EXPECT_EQ(shape.dim(2).dim_value(), 32);
  EXPECT_EQ(shape.dim(3).dim_value(), 24);
  for (const auto& init : proto.graph().initializer()) {
    if (init.name() == "normalization_mean") {
      EXPECT_EQ(init.dims_size(), 3) << "a [3, 1, 1] constant";
    }
  }
}

TEST(Export, OnnxPassesTheCheckerAndCarriesTheFacts) {
  for (const auto& name : kNetworks) {
    auto model = trained_looking(name);
    deploy::ExportSettings settings;
    settings.with_preprocessing = true;
    settings.pixel_type = deploy::PixelType::Uint8;
    const std::string bytes =
        deploy::onnx_model_bytes(deploy::exportable_network(*model, false), info_for(name), settings);
    onnx::ModelProto proto;
    ASSERT_TRUE(proto.ParseFromString(bytes)) << name;
    EXPECT_NO_THROW(onnx::checker::check_model(proto)) << name;
    EXPECT_EQ(proto.opset_import(0).version(), deploy::kOnnxOpset);
    EXPECT_EQ(proto.graph().input(0).type().tensor_type().elem_type(), onnx::TensorProto::UINT8);
    EXPECT_EQ(proto.graph().input(0).type().tensor_type().shape().dim(0).dim_param(), "batch");
    std::map<std::string, std::string> meta;
    for (const auto& p : proto.metadata_props()) meta[p.key()] = p.value();
    EXPECT_EQ(nlohmann::json::parse(meta["classes"]).size(), 10u);
    std::set<std::string> ops;
    for (const auto& node : proto.graph().node()) ops.insert(node.op_type());
    EXPECT_FALSE(ops.count("Dropout")) << name;
    if (name == kAllTokens) {
      for (const char* op : {"Conv", "BatchNormalization", "Erf", "Tanh", "Elu", "Sigmoid", "LeakyRelu", "MaxPool",
                             "AveragePool", "Gemm", "Cast", "Relu"})
        EXPECT_TRUE(ops.count(op)) << op;
    }
  }
}

TEST(Export, RefusesWhatCannotBeExportedAndLeavesNoFile) {
  deploy::ExportSettings uint8_without_preprocessing;
  uint8_without_preprocessing.pixel_type = deploy::PixelType::Uint8;
  EXPECT_THROW(deploy::check_export_settings(uint8_without_preprocessing), Error);
  EXPECT_THROW(deploy::parse_export_format("tflite"), Error);
  EXPECT_THROW(deploy::parse_pixel_type("int16"), Error);

  TempDir tmp;
  eval::LoadedModel loaded{trained_looking("lenet"), info_for("lenet")};
  const auto out = tmp / "missing" / "model.onnx";
  EXPECT_THROW(deploy::export_model(loaded, deploy::ExportFormat::Onnx, out, {}), Error);
  EXPECT_FALSE(std::filesystem::exists(tmp / "missing"));

  // A graph that names a tensor the network lacks is refused by name, not written.
  deploy::ExportableNetwork net = deploy::exportable_network(*loaded.model, false);
  net.tensors.erase("fc_2.bias");
  try {
    deploy::onnx_model_bytes(net, loaded.info, {});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("fc_2.bias"), std::string::npos) << e.what();
  }
}
