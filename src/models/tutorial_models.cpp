#include "models/tutorial_models.h"

#include "util/error.h"

namespace convkit::models {

namespace nn = torch::nn;

namespace {

// The side of LeNet's feature maps after conv k5, pool 2, conv k5, pool 2.
int64_t lenet_features_side(int64_t side) { return ((side - 4) / 2 - 4) / 2; }

}  // namespace

LeNetImpl::LeNetImpl(int64_t output_dim, data::ImageShape input) : input_(input) {
  if (lenet_features_side(input.height) < 1 || lenet_features_side(input.width) < 1)
    throw Error("--model lenet: images of " + input.str() + " are too small (at least 16x16)");
  const int64_t features = 16 * lenet_features_side(input.height) * lenet_features_side(input.width);
  // Registered in the tutorial's order so the default initialisation consumes the global
  // generator exactly as Python's LeNet.__init__ does.
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(input.channels, 6, 5)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  fc_1 = register_module("fc_1", nn::Linear(features, 120));  // 16 * 4 * 4 on 28x28
  fc_2 = register_module("fc_2", nn::Linear(120, 84));
  fc_3 = register_module("fc_3", nn::Linear(84, output_dim));
}

Output LeNetImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = conv_pool_relu(*conv1, input);
  x = conv_pool_relu(*conv2, x);
  torch::Tensor h = x.view({x.size(0), -1});
  x = linear(*fc_1, h, /*relu=*/true);
  x = linear(*fc_2, x, /*relu=*/true);
  return {linear(*fc_3, x), h};
}

InferenceGraph LeNetImpl::inference_graph() const {
  using K = InferenceOp::Kind;
  const InferenceOp pool = pool_op(K::MaxPool, 2), relu = activation_op("relu");
  InferenceGraph g{input_.channels, input_.height, input_.width, fc_3->options.out_features(), {}};
  g.ops = {layer_op(K::Conv, "conv1", 5),
           pool,
           relu,
           layer_op(K::Conv, "conv2", 5),
           pool,
           relu,
           flatten_op(),
           layer_op(K::Linear, "fc_1"),
           relu,
           layer_op(K::Linear, "fc_2"),
           relu,
           layer_op(K::Linear, "fc_3")};
  return g;
}

MLPImpl::MLPImpl(data::ImageShape input, int64_t output_dim) : input_(input) {
  input_fc = register_module("input_fc", nn::Linear(input.values(), 250));
  hidden_fc = register_module("hidden_fc", nn::Linear(250, 100));
  output_fc = register_module("output_fc", nn::Linear(100, output_dim));
}

Output MLPImpl::forward(const torch::Tensor& input) {
  const torch::Tensor x = input.view({input.size(0), -1});
  const torch::Tensor h_1 = linear(*input_fc, x, /*relu=*/true);
  const torch::Tensor h_2 = linear(*hidden_fc, h_1, /*relu=*/true);
  return {linear(*output_fc, h_2), h_2};
}

}  // namespace convkit::models

namespace convkit::models {

InferenceGraph MLPImpl::inference_graph() const {
  using K = InferenceOp::Kind;
  const InferenceOp relu = activation_op("relu");
  InferenceGraph g{input_.channels, input_.height, input_.width, output_fc->options.out_features(), {}};
  g.ops = {flatten_op(), layer_op(K::Linear, "input_fc"), relu, layer_op(K::Linear, "hidden_fc"),
           relu,         layer_op(K::Linear, "output_fc")};
  return g;
}

}  // namespace convkit::models
