// The tutorial's training and evaluation loops: one pass over the data each.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>
#include <vector>

#include "data/mixing.h"
#include "data/transforms.h"
#include "models/classifier.h"
#include "train/schedule.h"
#include "train/shards.h"
#include "train/weight_average.h"
#include "train/weight_decay.h"
#include "util/error.h"

namespace convkit::dist {
class ProcessGroup;
}

namespace convkit::train {

struct EpochStats {
  double loss = 0;  // mean over batches, as the tutorial computes it
  double acc = 0;   // mean over batches, fraction 0..1
};

// What data-parallel training adds to a step (nothing without a group): each rank takes its
// slice of every batch (the batches are the same on every rank), the gradients of `parameters`
// are summed over the ranks before the optimiser steps, and whatever the network draws at
// random (dropout) comes from this rank's own generator, so that the global one, which orders
// the batches, stays the same on every rank.
struct DataParallel {
  const dist::ProcessGroup* group = nullptr;
  std::vector<torch::Tensor> parameters;  // the optimiser's (the flat buffer on the fast path)
  torch::Tensor generator_state;          // this rank's generator, carried from step to step
  bool spin = false;                      // busy-wait for the others' gradients (a core per thread)
};

// What a training pass does besides the tutorial's plain step.
struct StepSettings {
  double label_smoothing = 0;
  data::Augmentation augmentation;
  data::Mixing mixing;
  int64_t classes = 0;                             // for mixing's targets
  torch::Tensor background;                        // normalised black [1,C,1,1], for augmentation fill
  WeightDecay weight_decay;                        // what the step applies itself (train/weight_decay.h)
  WeightAverage* average = nullptr;                // updated after each optimiser step (--ema)
  const LrSchedule* schedule = nullptr;            // sets the learning rate before each step
  int64_t first_step = 0;                          // the schedule's index of this pass's first step
  std::function<void(int64_t batch)> before_step;  // e.g. a benchmark's timer
  BatchShards shards;                              // see make_shards
  bool optimizer_sums_shards = false;              // see share_shard_gradients
  DataParallel parallel;
};

// What train_epoch throws when a batch's loss is not finite: a run stops with it, the
// learning-rate range test ends there.
class Diverged : public Error {
 public:
  using Error::Error;
};

// One pass over `order` (indices into `inputs`) in batches, with optimiser steps. Diverged as
// soon as a batch's loss is not finite.
EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& inputs,
                       const torch::Tensor& labels, const torch::Tensor& order, int64_t batch_size,
                       const torch::Device& device, const StepSettings& settings = {}, bool progress = false);

// Loss and accuracy over `inputs` in order, eval mode, no gradients. With a group, each rank
// evaluates its share of the batches and the sums are added over the ranks.
EpochStats evaluate(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                    int64_t batch_size, const torch::Device& device, bool progress = false,
                    const dist::ProcessGroup* group = nullptr);

}  // namespace convkit::train
