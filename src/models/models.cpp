#include "models/models.h"

#include <ATen/Parallel.h>

#include "models/fused.h"
#include "models/spec.h"
#include "util/error.h"

namespace convkit::models {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

torch::Tensor ClassifierImpl::conv_pool_relu(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) const {
  if (!exact_ && x.dim() == 4 && models::conv_pool_relu_fits(conv.options, x.size(2), x.size(3)) &&
      models::conv_pool_relu_supported(x, conv.weight))
    return models::conv_pool_relu(x, conv.weight, conv.bias);
  TORCH_CHECK(!at::in_parallel_region(), "a convolution outside the fused kernel inside a batch shard");
  return F::relu(F::max_pool2d(conv.forward(x), F::MaxPool2dFuncOptions(2)));
}

torch::Tensor ClassifierImpl::linear(torch::nn::LinearImpl& fc, const torch::Tensor& x, bool relu) const {
  if (!exact_ && x.dim() == 2) return models::linear(x, fc.weight, fc.bias, relu);
  const torch::Tensor y = fc.forward(x);
  return relu ? F::relu(y) : y;
}

LeNetImpl::LeNetImpl(int64_t output_dim) {
  // Registered in the tutorial's order so the default initialisation consumes the global
  // generator exactly as Python's LeNet.__init__ does.
  conv1 = register_module("conv1", nn::Conv2d(nn::Conv2dOptions(1, 6, 5)));
  conv2 = register_module("conv2", nn::Conv2d(nn::Conv2dOptions(6, 16, 5)));
  fc_1 = register_module("fc_1", nn::Linear(16 * 4 * 4, 120));
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

MLPImpl::MLPImpl(int64_t input_dim, int64_t output_dim) {
  input_fc = register_module("input_fc", nn::Linear(input_dim, 250));
  hidden_fc = register_module("hidden_fc", nn::Linear(250, 100));
  output_fc = register_module("output_fc", nn::Linear(100, output_dim));
}

Output MLPImpl::forward(const torch::Tensor& input) {
  const torch::Tensor x = input.view({input.size(0), -1});
  const torch::Tensor h_1 = linear(*input_fc, x, /*relu=*/true);
  const torch::Tensor h_2 = linear(*hidden_fc, h_1, /*relu=*/true);
  return {linear(*output_fc, h_2), h_2};
}

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet", "mlp", "lenet-bn"};
  return names;
}

Classifier make_model(const std::string& name, int64_t num_classes) {
  if (name == "lenet") return LeNet(num_classes).ptr();
  if (name == "mlp") return MLP(28 * 28, num_classes).ptr();
  // The tutorial's description: two convolutions, each followed by max-pooling and batch norm,
  // a dense layer with dropout, then the output layer.
  if (name == "lenet-bn") return SpecNet(kLeNetBnSpec, num_classes).ptr();
  if (is_spec(name)) return SpecNet(name, num_classes).ptr();
  std::string known;
  for (const auto& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("--model: unknown model '" + name + "' (known: " + known + ", or a spec such as c6k5-mp2-fc120)");
}

void check_model_name(const std::string& name) {
  const auto& names = model_names();
  if (std::find(names.begin(), names.end(), name) != names.end()) return;
  if (is_spec(name)) {
    parse_spec(name);
    return;
  }
  make_model(name);  // throws the unknown-model error
}

int64_t count_parameters(const torch::nn::Module& module) {
  int64_t total = 0;
  for (const auto& p : module.parameters()) total += p.numel();
  return total;
}

}  // namespace convkit::models
