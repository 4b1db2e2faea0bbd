// A trained network's inference pass as a list of standard operations on named parameters:
// what a runtime that has never seen convkit needs to rebuild it (ONNX, TorchScript). Dropout
// is absent (the identity at inference) and batch norm uses its running statistics.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace convkit::models {

// LibTorch's default, which every batch norm of convkit's networks uses.
inline constexpr double kBatchNormEps = 1e-5;

struct InferenceOp {
  enum class Kind { Conv, BatchNorm, Linear, MaxPool, AvgPool, Flatten, Activation };
  Kind kind;
  // The parameters' prefix in the state_dict ("conv1" for conv1.weight and conv1.bias);
  // empty for operations without parameters.
  std::string module;
  int64_t kernel = 0, stride = 1, padding = 0;  // Conv; pools use kernel as their stride too
  double eps = kBatchNormEps;                   // BatchNorm
  std::string activation;                       // Activation: relu|gelu|tanh|elu|silu|lrelu
};

// The operations by kind, so that every field has its value.
inline InferenceOp layer_op(InferenceOp::Kind kind, std::string module, int64_t kernel = 0, int64_t stride = 1,
                            int64_t padding = 0) {
  return {kind, std::move(module), kernel, stride, padding, kBatchNormEps, ""};
}
inline InferenceOp batch_norm_op(std::string module) {
  return layer_op(InferenceOp::Kind::BatchNorm, std::move(module));
}
inline InferenceOp pool_op(InferenceOp::Kind kind, int64_t kernel) { return layer_op(kind, "", kernel); }
inline InferenceOp flatten_op() { return layer_op(InferenceOp::Kind::Flatten, ""); }
inline InferenceOp activation_op(std::string name) {
  InferenceOp op = layer_op(InferenceOp::Kind::Activation, "");
  op.activation = std::move(name);
  return op;
}

struct InferenceGraph {
  int64_t channels = 1, height = 28, width = 28;  // one input image
  int64_t classes = 10;                           // logits per image
  std::vector<InferenceOp> ops;
};

// The negative slope convkit's lrelu uses (LibTorch's default), and ELU's alpha.
inline constexpr double kLeakyReluSlope = 0.01;
inline constexpr double kEluAlpha = 1.0;

}  // namespace convkit::models
