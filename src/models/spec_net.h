// Configurable CNNs from a compact spec string, e.g. the tutorial's LeNet:
//   c6k5-mp2-c16k5-mp2-fc120-fc84
// Tokens, separated by '-':
//   c<out>k<size>[s<stride>][p<pad>][bn]  convolution (+ batch norm), then the activation
//   pw<size>                               frozen patch-whitening convolution fitted to the training
//                                          images (models/patch_whitening.h), then the activation;
//                                          first token only
//   mp<size> | ap<size>                    max / average pooling
//   dr<p>                                  dropout with probability p (0 <= p < 1)
//   fc<out>[bn]                            dense layer (+ batch norm), then the activation
//   relu | gelu | tanh | elu | silu | lrelu   activation for the layers that follow (default relu)
// The input is the data's (1x28x28 for FashionMNIST); a flatten comes before the first fc; the
// output layer (one unit per class) is appended. Parameter names: conv1.weight, bn_conv1.weight, fc_1.weight, ...,
// fc_out.bias.
#pragma once

#include <torch/nn/modules/container/any.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/classifier.h"

namespace convkit::models {

struct LayerSpec {
  enum class Kind { Conv, MaxPool, AvgPool, Dropout, Dense, Activation } kind;
  int64_t out = 0, kernel = 0, stride = 1, padding = 0;  // conv; out also for dense; kernel for pools
  bool batch_norm = false;
  bool whitening = false;  // a conv that is a frozen patch whitening (pw<size>)
  double p = 0;            // dropout
  std::string activation;  // Activation
};

// Bounds on a spec, checked as it is parsed, so that no spec can ask for more memory than a
// network of this kind could use: the length of the string; a convolution's channels and its
// kernel, stride and padding (also a pool's size); a dense layer's units; the values per image
// after any convolution; the weights and biases of the layers up to any token.
inline constexpr size_t kMaxSpecLength = 1000;
inline constexpr int64_t kMaxChannels = 4096, kMaxKernel = 64, kMaxUnits = 65536;
inline constexpr int64_t kMaxFeatures = int64_t{1} << 22, kMaxParameters = int64_t{1} << 26;

// Parses and checks a spec (shapes and the bounds above); an Error naming the offending token otherwise.
std::vector<LayerSpec> parse_spec(const std::string& spec, data::ImageShape input = {});

// The activation a spec names (relu|gelu|tanh|elu|silu|lrelu) applied to x; an Error for
// any other name.
torch::Tensor activate(const std::string& name, const torch::Tensor& x);

// True when `name` looks like a spec rather than a network name.
bool is_spec(const std::string& name);

class SpecNetImpl : public ClassifierImpl {
 public:
  SpecNetImpl(const std::string& spec, int64_t num_classes, data::ImageShape input = {});
  Output forward(const torch::Tensor& x) override;
  bool convolutions_fused() const override;
  InferenceGraph inference_graph() const override;

 private:
  struct Step {
    LayerSpec layer;
    bool pools_in_conv = false;   // conv (ReLU) -> mp2 that the fused kernel can run as one op
    bool norm_relu = false;       // conv -> batch norm -> ReLU, the norm and ReLU as one op
    bool norm_pools = false;      // ... and the mp2 that follows in that op too
    bool part_of_conv = false;    // the mp2 of a conv step that pools
    torch::nn::AnyModule module;  // empty for activations and pools
    torch::nn::AnyModule norm;    // batch norm, when asked for
    std::string name;             // the module's name (conv1, fc_2, ...); empty for pools and activations
  };
  std::vector<Step> steps_;
  torch::nn::Linear fc_out{nullptr};
  data::ImageShape input_;
};
TORCH_MODULE(SpecNet);

}  // namespace convkit::models
