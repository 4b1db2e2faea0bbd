// The tutorial's training and evaluation loops: one pass over the data each.
#pragma once

#include <torch/optim/optimizer.h>
#include <torch/types.h>

#include <functional>

#include "data/transforms.h"
#include "models/classifier.h"
#include "train/schedule.h"
#include "train/shards.h"

namespace convkit::train {

struct EpochStats {
  double loss = 0;  // mean over batches, as the tutorial computes it
  double acc = 0;   // mean over batches, fraction 0..1
};

// What a training pass does besides the tutorial's plain step.
struct StepSettings {
  double label_smoothing = 0;
  data::Augmentation augmentation;
  torch::Tensor background;                        // normalised black [1,C,1,1], for augmentation fill
  const LrSchedule* schedule = nullptr;            // sets the learning rate before each step
  int64_t first_step = 0;                          // the schedule's index of this pass's first step
  std::function<void(int64_t batch)> before_step;  // e.g. a benchmark's timer
  BatchShards shards;                              // see make_shards
  bool optimizer_sums_shards = false;              // see share_shard_gradients
};

// One pass over `order` (indices into `inputs`) in batches, with optimiser steps. An Error as
// soon as a batch's loss is not finite.
EpochStats train_epoch(models::ClassifierImpl& model, torch::optim::Optimizer& optimizer, const torch::Tensor& inputs,
                       const torch::Tensor& labels, const torch::Tensor& order, int64_t batch_size,
                       const torch::Device& device, const StepSettings& settings = {}, bool progress = false);

// Loss and accuracy over `inputs` in order, eval mode, no gradients.
EpochStats evaluate(models::ClassifierImpl& model, const torch::Tensor& inputs, const torch::Tensor& labels,
                    int64_t batch_size, const torch::Device& device, bool progress = false);

}  // namespace convkit::train
