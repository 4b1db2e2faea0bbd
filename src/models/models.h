// The tutorial's networks, with the tutorial's parameter names (conv1.weight, fc_1.bias, ...)
// so that state_dicts move freely between convkit and Python.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

namespace convkit::models {

// What every classifier returns: the logits and the hidden representation the tutorial
// plots with PCA / t-SNE (`return x, h` in the Python models).
struct Output {
  torch::Tensor logits;
  torch::Tensor hidden;
};

class ClassifierImpl : public torch::nn::Module {
 public:
  virtual Output forward(const torch::Tensor& x) = 0;

  // Exact: LibTorch's own kernels only, bit-identical to the Python tutorial. Otherwise (the
  // default) conv -> 2x2 max-pool -> ReLU blocks and linear -> ReLU layers run as single fused
  // ops (models/fused.h), equal to float rounding and several times faster on CPU.
  void set_exact(bool exact) { exact_ = exact; }
  bool exact() const { return exact_; }

  // True when, outside exact mode, every convolution runs in the fused kernel on 28x28 input.
  // A batch may then be split over threads (train/trainer.h, make_shards): oneDNN's
  // convolutions start their own threads and must not run inside another parallel region.
  virtual bool convolutions_fused() const { return true; }

 protected:
  // relu(max_pool2d(conv(x), 2)), fused when allowed and supported.
  torch::Tensor conv_pool_relu(torch::nn::Conv2dImpl& conv, const torch::Tensor& x) const;
  // fc(x), then the ReLU when `relu`; one op outside exact mode (models/fused.h).
  torch::Tensor linear(torch::nn::LinearImpl& fc, const torch::Tensor& x, bool relu = false) const;

 private:
  bool exact_ = false;
};
using Classifier = std::shared_ptr<ClassifierImpl>;

// conv1 1->6 k5, pool 2, ReLU, conv2 6->16 k5, pool 2, ReLU, flatten (256),
// fc_1 120, ReLU, fc_2 84, ReLU, fc_3 output_dim.  Hidden = the flattened conv features.
class LeNetImpl : public ClassifierImpl {
 public:
  explicit LeNetImpl(int64_t output_dim = 10);
  Output forward(const torch::Tensor& x) override;

  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc_1{nullptr}, fc_2{nullptr}, fc_3{nullptr};
};
TORCH_MODULE(LeNet);

// The tutorial's comparison network: input_fc 784->250, ReLU, hidden_fc 250->100, ReLU,
// output_fc 100->output_dim.  Hidden = the 100-d second layer.
class MLPImpl : public ClassifierImpl {
 public:
  explicit MLPImpl(int64_t input_dim = 28 * 28, int64_t output_dim = 10);
  Output forward(const torch::Tensor& x) override;

  torch::nn::Linear input_fc{nullptr}, hidden_fc{nullptr}, output_fc{nullptr};
};
TORCH_MODULE(MLP);

inline constexpr const char* kLeNetBnSpec = "c6k5bn-mp2-c16k5bn-mp2-fc120-dr0.5";

// Names accepted by make_model, in the order shown in --help (a spec string works too).
const std::vector<std::string>& model_names();

// Builds a freshly initialised network (draws from the global generator, as Python does).
Classifier make_model(const std::string& name, int64_t num_classes = 10);

// Throws the Error make_model would, without building anything.
void check_model_name(const std::string& name);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace convkit::models
