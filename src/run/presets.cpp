#include "run/presets.h"

#include "util/error.h"
#include "util/format.h"

namespace convkit::run {

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tutorial", "competition", "rotation"};
  return names;
}

TrainOptions preset(const std::string& name) {
  TrainOptions o;
  if (name == "tutorial") return o;
  // A wider CNN with batch norm and dropout, AdamW with a one-cycle schedule, label smoothing,
  // and shifted/mirrored training images.
  o.model = "c32k3p1bn-mp2-c64k3p1bn-mp2-dr0.2-fc256bn-dr0.3";
  o.optimizer.name = "adamw";
  o.optimizer.lr = 3e-3;
  o.optimizer.weight_decay = 5e-4;
  o.schedule.name = "onecycle";
  o.batch_size = 128;
  o.epochs = 12;
  o.label_smoothing = 0.1;
  o.augmentation.translate = 1;
  o.augmentation.hflip = true;
  if (name == "competition") return o;
  if (name == "rotation") {
    o.augmentation.rotate_degrees = 25;
    return o;
  }
  throw Error("--preset: unknown preset '" + name + "' (known: " + join(preset_names()) + ")");
}

}  // namespace convkit::run
