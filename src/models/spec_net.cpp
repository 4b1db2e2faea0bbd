#include "models/spec_net.h"

#include <torch/torch.h>

#include <cctype>
#include <regex>

#include "data/dataset.h"
#include "models/fused_conv.h"
#include "models/patch_whitening.h"
#include "util/error.h"

namespace convkit::models {
namespace {

namespace F = torch::nn::functional;

const std::vector<std::string> kActivations = {"relu", "gelu", "tanh", "elu", "silu", "lrelu"};

[[noreturn]] void bad(const std::string& spec, const std::string& token, const std::string& why) {
  throw Error("--model: bad spec '" + spec + "' at token '" + token + "': " + why);
}

// A number of a token, at most `limit`: more digits than that never reach std::stoll.
int64_t number(const std::string& spec, const std::string& token, const std::ssub_match& digits, int64_t limit,
               const char* what) {
  const int64_t value = digits.length() > 18 ? limit + 1 : std::stoll(digits);
  if (value > limit) bad(spec, token, std::string(what) + " must be at most " + std::to_string(limit));
  return value;
}

}  // namespace

torch::Tensor activate(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "tanh") return torch::tanh(x);
  if (name == "elu") return torch::elu(x, kEluAlpha);
  if (name == "silu") return torch::silu(x);
  if (name == "lrelu") return torch::leaky_relu(x, kLeakyReluSlope);
  throw Error("unknown activation '" + name + "'");
}

namespace {

int64_t conv_output_side(int64_t side, const LayerSpec& conv) {
  return (side + 2 * conv.padding - conv.kernel) / conv.stride + 1;
}

}  // namespace

bool is_spec(const std::string& name) {
  return std::any_of(name.begin(), name.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); }) ||
         (name.find('-') != std::string::npos && name.find("lenet") == std::string::npos);
}

std::vector<LayerSpec> parse_spec(const std::string& spec, data::ImageShape input) {
  static const std::regex conv(R"(c(\d+)k(\d+)(?:s(\d+))?(?:p(\d+))?(bn)?)");
  static const std::regex pool(R"((mp|ap)(\d+))");
  static const std::regex dropout(R"(dr(0?\.\d+|0))");
  static const std::regex dense(R"(fc(\d+)(bn)?)");
  static const std::regex whitening(R"(pw(\d+))");
  std::vector<LayerSpec> layers;
  int64_t channels = input.channels, height = input.height, width = input.width;  // the shape flowing through
  int64_t parameters = 0;
  bool flat = false;
  size_t start = 0;
  if (spec.empty()) throw Error("--model: empty spec");
  if (spec.size() > kMaxSpecLength)
    throw Error("--model: a spec is at most " + std::to_string(kMaxSpecLength) + " characters");
  while (start <= spec.size()) {
    const size_t end = std::min(spec.find('-', start), spec.size());
    const std::string token = spec.substr(start, end - start);
    start = end + 1;
    std::smatch m;
    LayerSpec l{};
    if (token.empty()) bad(spec, token, "empty token (two '-' in a row?)");
    if (std::regex_match(token, m, conv)) {
      if (flat) bad(spec, token, "convolution after a dense layer");
      l.kind = LayerSpec::Kind::Conv;
      l.out = number(spec, token, m[1], kMaxChannels, "channels");
      l.kernel = number(spec, token, m[2], kMaxKernel, "kernel, stride and padding");
      l.stride = m[3].matched ? number(spec, token, m[3], kMaxKernel, "kernel, stride and padding") : 1;
      l.padding = m[4].matched ? number(spec, token, m[4], kMaxKernel, "kernel, stride and padding") : 0;
      l.batch_norm = m[5].matched;
      if (l.out < 1 || l.kernel < 1 || l.stride < 1) bad(spec, token, "channels, kernel and stride must be positive");
      height = conv_output_side(height, l), width = conv_output_side(width, l);
      if (height < 1 || width < 1) bad(spec, token, "the image is smaller than the kernel here");
      parameters += l.out * (channels * l.kernel * l.kernel + 1);
      channels = l.out;
      if (channels * height * width > kMaxFeatures)
        bad(spec, token, "more than " + std::to_string(kMaxFeatures) + " values per image here");
    } else if (std::regex_match(token, m, whitening)) {
      if (!layers.empty()) bad(spec, token, "patch whitening must be the first layer (it is fitted to the images)");
      l.kind = LayerSpec::Kind::Conv;
      l.whitening = true;
      l.kernel = number(spec, token, m[1], kMaxKernel, "kernel");
      if (l.kernel < 1 || l.kernel > height || l.kernel > width)
        bad(spec, token, "kernel must be between 1 and the image's side");
      l.out = whitening_outputs(channels, l.kernel);
      if (l.out > kMaxChannels) bad(spec, token, "more than " + std::to_string(kMaxChannels) + " channels");
      l.padding = (l.kernel - 1) / 2;
      height = conv_output_side(height, l), width = conv_output_side(width, l);
      parameters += l.out * (channels * l.kernel * l.kernel + 1);
      channels = l.out;
    } else if (std::regex_match(token, m, pool)) {
      if (flat) bad(spec, token, "pooling after a dense layer");
      l.kind = m[1] == "mp" ? LayerSpec::Kind::MaxPool : LayerSpec::Kind::AvgPool;
      l.kernel = number(spec, token, m[2], kMaxKernel, "pool size");
      if (l.kernel < 1 || height / l.kernel < 1 || width / l.kernel < 1)
        bad(spec, token,
            "pool larger than the " + std::to_string(height) + "x" + std::to_string(width) + " feature map");
      height /= l.kernel, width /= l.kernel;
    } else if (std::regex_match(token, m, dropout)) {
      l.kind = LayerSpec::Kind::Dropout;
      l.p = std::stod(m[1]);
    } else if (std::regex_match(token, m, dense)) {
      l.kind = LayerSpec::Kind::Dense;
      l.out = number(spec, token, m[1], kMaxUnits, "dense size");
      l.batch_norm = m[2].matched;
      if (l.out < 1) bad(spec, token, "dense size must be positive");
      parameters += l.out * ((flat ? channels : channels * height * width) + 1);
      channels = l.out;
      flat = true;
    } else if (std::find(kActivations.begin(), kActivations.end(), token) != kActivations.end()) {
      l.kind = LayerSpec::Kind::Activation;
      l.activation = token;
    } else {
      bad(spec, token,
          "unknown token (expected c<out>k<size>[s][p][bn], pw<size>, mp<n>, ap<n>, dr<p>, fc<n>[bn] or an "
          "activation)");
    }
    if (parameters > kMaxParameters)
      bad(spec, token, "more than " + std::to_string(kMaxParameters) + " parameters up to here");
    layers.push_back(l);
  }
  return layers;
}

bool SpecNetImpl::convolutions_fused() const {
  return std::all_of(steps_.begin(), steps_.end(),
                     [](const Step& s) { return s.layer.kind != LayerSpec::Kind::Conv || s.pools_in_conv; });
}

SpecNetImpl::SpecNetImpl(const std::string& spec, int64_t num_classes, data::ImageShape input) : input_(input) {
  int64_t channels = input.channels, height = input.height, width = input.width;
  int64_t features = 0, n_conv = 0, n_fc = 0, n_drop = 0;
  bool flat = false;
  std::string activation = "relu";
  const std::vector<LayerSpec> layers = parse_spec(spec, input);
  for (size_t i = 0; i < layers.size(); ++i) {
    const LayerSpec& l = layers[i];
    Step step{l, false, false, false, false, {}, {}, {}};
    switch (l.kind) {
      case LayerSpec::Kind::Conv: {
        if (l.whitening) {
          step.name = "whiten";
          step.module = torch::nn::AnyModule(register_module("whiten", PatchWhitening(channels, l.kernel)));
          channels = l.out;
          height = conv_output_side(height, l), width = conv_output_side(width, l);
          break;
        }
        const bool next_is_mp2 =
            i + 1 < layers.size() && layers[i + 1].kind == LayerSpec::Kind::MaxPool && layers[i + 1].kernel == 2;
        const std::string name = step.name = "conv" + std::to_string(++n_conv);
        auto conv = register_module(
            name,
            torch::nn::Conv2d(torch::nn::Conv2dOptions(channels, l.out, l.kernel).stride(l.stride).padding(l.padding)));
        step.pools_in_conv =
            next_is_mp2 && !l.batch_norm && activation == "relu" && conv_pool_relu_fits(conv->options, height, width);
        step.norm_relu = l.batch_norm && activation == "relu";
        step.norm_pools = step.norm_relu && next_is_mp2;
        step.module = torch::nn::AnyModule(conv);
        if (l.batch_norm)
          step.norm = torch::nn::AnyModule(register_module("bn_" + name, torch::nn::BatchNorm2d(l.out)));
        channels = l.out;
        height = conv_output_side(height, l), width = conv_output_side(width, l);
        break;
      }
      case LayerSpec::Kind::MaxPool:
      case LayerSpec::Kind::AvgPool:
        height /= l.kernel, width /= l.kernel;
        break;
      case LayerSpec::Kind::Dropout:
        step.module =
            torch::nn::AnyModule(register_module("dropout" + std::to_string(++n_drop), torch::nn::Dropout(l.p)));
        break;
      case LayerSpec::Kind::Dense: {
        if (!flat) features = channels * height * width, flat = true;
        const std::string name = step.name = "fc_" + std::to_string(++n_fc);
        step.module = torch::nn::AnyModule(register_module(name, torch::nn::Linear(features, l.out)));
        if (l.batch_norm)
          step.norm = torch::nn::AnyModule(register_module("bn_" + name, torch::nn::BatchNorm1d(l.out)));
        features = l.out;
        break;
      }
      case LayerSpec::Kind::Activation:
        activation = l.activation;
        break;
    }
    if (l.kind == LayerSpec::Kind::MaxPool && !steps_.empty() &&
        (steps_.back().pools_in_conv || steps_.back().norm_pools))
      step.part_of_conv = true;
    steps_.push_back(std::move(step));
  }
  if (!flat) features = channels * height * width;
  fc_out = register_module("fc_out", torch::nn::Linear(features, num_classes));
}

InferenceGraph SpecNetImpl::inference_graph() const {
  using K = InferenceOp::Kind;
  InferenceGraph g{input_.channels, input_.height, input_.width, fc_out->options.out_features(), {}};
  std::string activation = "relu";
  bool flat = false;
  for (const Step& step : steps_) {
    const LayerSpec& l = step.layer;
    switch (l.kind) {
      case LayerSpec::Kind::Conv:
      case LayerSpec::Kind::Dense:
        if (l.kind == LayerSpec::Kind::Dense && !flat) g.ops.push_back(flatten_op()), flat = true;
        g.ops.push_back(
            layer_op(l.kind == LayerSpec::Kind::Conv ? K::Conv : K::Linear, step.name, l.kernel, l.stride, l.padding));
        if (l.batch_norm) g.ops.push_back(batch_norm_op("bn_" + step.name));
        g.ops.push_back(activation_op(activation));
        break;
      case LayerSpec::Kind::MaxPool:
      case LayerSpec::Kind::AvgPool:
        g.ops.push_back(pool_op(l.kind == LayerSpec::Kind::MaxPool ? K::MaxPool : K::AvgPool, l.kernel));
        break;
      case LayerSpec::Kind::Activation:
        activation = l.activation;
        break;
      case LayerSpec::Kind::Dropout:  // the identity at inference
        break;
    }
  }
  if (!flat) g.ops.push_back(flatten_op());
  g.ops.push_back(layer_op(K::Linear, "fc_out"));
  return g;
}

Output SpecNetImpl::forward(const torch::Tensor& input) {
  torch::Tensor x = input;
  std::string activation = "relu";
  for (auto& step : steps_) {
    const LayerSpec& l = step.layer;
    if (step.part_of_conv) continue;  // done with its convolution
    if (step.pools_in_conv) {
      x = conv_pool_relu(step.module.get<torch::nn::Conv2dImpl>(), x);
      continue;
    }
    switch (l.kind) {
      case LayerSpec::Kind::Dense:
        if (x.dim() > 2) x = x.flatten(1);
        if (!l.batch_norm && activation == "relu") {
          x = linear(step.module.get<torch::nn::LinearImpl>(), x, /*relu=*/true);
          break;
        }
        x = linear(step.module.get<torch::nn::LinearImpl>(), x);
        if (l.batch_norm) x = step.norm.forward(x);
        x = activate(activation, x);
        break;
      case LayerSpec::Kind::Conv:
        x = step.module.forward(x);
        if (step.norm_relu) {
          x = batch_norm_relu_pool(*step.norm.ptr()->as<torch::nn::BatchNorm2dImpl>(), x, step.norm_pools);
          break;
        }
        if (l.batch_norm) x = step.norm.forward(x);
        x = activate(activation, x);
        break;
      case LayerSpec::Kind::MaxPool:
        x = F::max_pool2d(x, F::MaxPool2dFuncOptions(l.kernel));
        break;
      case LayerSpec::Kind::AvgPool:
        x = F::avg_pool2d(x, F::AvgPool2dFuncOptions(l.kernel));
        break;
      case LayerSpec::Kind::Dropout:
        x = step.module.forward(x);
        break;
      case LayerSpec::Kind::Activation:
        activation = l.activation;
        break;
    }
  }
  const torch::Tensor h = x.flatten(1);
  return {linear(*fc_out, h), h};
}

}  // namespace convkit::models
