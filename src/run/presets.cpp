#include "run/presets.h"

#include "util/error.h"
#include "util/format.h"

namespace convkit::run {
namespace {

// The competition's common recipe: a CNN with batch norm, AdamW on a one-cycle schedule, label
// smoothing, shifted and mirrored training images, a weight average, and the mirror image
// averaged in at test time.
TrainOptions competition_recipe() {
  TrainOptions o;
  o.model = "c32k3p1bn-mp2-c64k3p1bn-mp2-dr0.2-fc256bn-dr0.3";
  o.optimizer.name = "adamw";
  o.optimizer.lr = 3e-3;
  o.optimizer.weight_decay = 5e-4;
  o.schedule.name = "onecycle";
  o.batch_size = 128;
  o.label_smoothing = 0.1;
  o.augmentation.translate = 1;
  o.augmentation.hflip = true;
  o.ema = 0.999;
  o.tta = "flip";
  return o;
}

}  // namespace

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {"tutorial", "fast", "competition", "rotation"};
  return names;
}

TrainOptions preset(const std::string& name) {
  if (name == "tutorial") return TrainOptions{};
  TrainOptions o = competition_recipe();
  if (name == "fast") {
    // Few epochs: dropout would only slow the start, and the average must follow faster.
    o.model = "c32k3p1bn-mp2-c64k3p1bn-mp2-fc256bn";
    o.epochs = 7;
    o.ema = 0.998;
    return o;
  }
  if (name == "competition") {
    // Whitened patches make each epoch worth more than the whitening costs it.
    o.model = "pw3-" + o.model;
    o.epochs = 24;
    o.tta = "flip,shift";
    return o;
  }
  if (name == "rotation") {
    o.epochs = 42;
    o.augmentation.rotate_degrees = 25;
    return o;
  }
  throw Error("--preset: unknown preset '" + name + "' (known: " + join(preset_names()) + ")");
}

}  // namespace convkit::run
