// Networks by name: the tutorial's, lenet-bn, and spec strings (models/spec_net.h).
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"
#include "models/classifier.h"

namespace convkit::models {

// The tutorial's description of a LeNet with batch norm and dropout.
inline constexpr const char* kLeNetBnSpec = "c6k5bn-mp2-c16k5bn-mp2-fc120-dr0.5";

// Names accepted by make_model, in the order shown in --help (a spec string works too).
const std::vector<std::string>& model_names();

// Builds a freshly initialised network for images of `input` (draws from the global generator,
// as Python does). An Error naming the network when the images are too small for it.
Classifier make_model(const std::string& name, int64_t num_classes = data::kNumClasses, data::ImageShape input = {});

// Throws the Error make_model would, without building anything.
void check_model_name(const std::string& name);

}  // namespace convkit::models
