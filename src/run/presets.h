// The named recipes of --preset: a network with its training options.
#pragma once

#include <string>
#include <vector>

#include "run/options.h"

namespace convkit::run {

const std::vector<std::string>& preset_names();  // tutorial, competition, rotation

// An Error naming --preset for an unknown name.
TrainOptions preset(const std::string& name);

}  // namespace convkit::run
