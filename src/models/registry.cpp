#include "models/registry.h"

#include <algorithm>

#include "data/dataset.h"
#include "models/spec_net.h"
#include "models/tutorial_models.h"
#include "util/error.h"
#include "util/format.h"

namespace convkit::models {

const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"lenet", "mlp", "lenet-bn"};
  return names;
}

Classifier make_model(const std::string& name, int64_t num_classes, data::ImageShape input) {
  if (name == "lenet") return LeNet(num_classes, input).ptr();
  if (name == "mlp") return MLP(input, num_classes).ptr();
  // The tutorial's description: two convolutions, each followed by max-pooling and batch norm,
  // a dense layer with dropout, then the output layer.
  if (name == "lenet-bn") return SpecNet(kLeNetBnSpec, num_classes, input).ptr();
  if (is_spec(name)) return SpecNet(name, num_classes, input).ptr();
  throw Error("--model: unknown model '" + name + "' (known: " + join(model_names()) +
              ", or a spec such as c6k5-mp2-fc120)");
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

}  // namespace convkit::models
