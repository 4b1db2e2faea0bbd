// An exponential moving average of a network's weights (--ema), kept in a second network of
// the same architecture, which is evaluated, checkpointed and tested in the trained one's place:
// late in training the average sits nearer the middle of the minimum the steps circle around.
#pragma once

#include <torch/types.h>

#include "models/classifier.h"

namespace convkit::train {

class WeightAverage {
 public:
  // `average` is a network built like `model`; it starts as a copy of `model`.
  WeightAverage(models::Classifier average, const models::ClassifierImpl& model, double decay);

  // After an optimiser step: average = d * average + (1 - d) * weights for the parameters and
  // batch norm's running statistics (counters are copied), with d = min(decay, (1 + n) / (10 + n))
  // after n updates, as TensorFlow's ExponentialMovingAverage with num_updates does, so that the
  // first steps do not leave the average stuck at the initial weights.
  void update(const models::ClassifierImpl& model);

  models::ClassifierImpl& model() { return *average_; }
  const models::Classifier& shared() const { return average_; }
  double decay() const { return decay_; }
  int64_t updates() const { return updates_; }
  void set_updates(int64_t n) { updates_ = n; }  // when resuming

 private:
  models::Classifier average_;
  double decay_;
  int64_t updates_ = 0;
};

// The weights and buffers of `model` copied into `into` (same architecture), without autograd.
void copy_state(const models::ClassifierImpl& model, models::ClassifierImpl& into);

}  // namespace convkit::train
