// The tutorial's networks, with the tutorial's parameter names (conv1.weight, fc_1.bias, ...)
// so that state_dicts move freely between convkit and Python.
#pragma once

#include "data/dataset.h"
#include "models/classifier.h"

namespace convkit::models {

// conv1 C->6 k5, pool 2, ReLU, conv2 6->16 k5, pool 2, ReLU, flatten (256 for 28x28, 400 for
// 32x32), fc_1 120, ReLU, fc_2 84, ReLU, fc_3 output_dim.  Hidden = the flattened conv features.
// On 1x28x28 it is the tutorial's network; on 3x32x32 the network of PyTorch's CIFAR-10
// tutorial ("Training a classifier"). An Error for images under 16x16.
class LeNetImpl : public ClassifierImpl {
 public:
  explicit LeNetImpl(int64_t output_dim, data::ImageShape input = {});
  Output forward(const torch::Tensor& x) override;
  InferenceGraph inference_graph() const override;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc_1{nullptr}, fc_2{nullptr}, fc_3{nullptr};

 private:
  data::ImageShape input_;
};
TORCH_MODULE(LeNet);

// The tutorial's comparison network: input_fc C*H*W (784)->250, ReLU, hidden_fc 250->100, ReLU,
// output_fc 100->output_dim.  Hidden = the 100-d second layer.
class MLPImpl : public ClassifierImpl {
 public:
  MLPImpl(data::ImageShape input, int64_t output_dim);
  Output forward(const torch::Tensor& x) override;
  InferenceGraph inference_graph() const override;

  torch::nn::Linear input_fc{nullptr}, hidden_fc{nullptr}, output_fc{nullptr};

 private:
  data::ImageShape input_;
};
TORCH_MODULE(MLP);

}  // namespace convkit::models
