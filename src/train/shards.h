// A training batch split into one shard per thread: LeNet's small layers do not scale over
// threads inside one op, but whole shards do.
#pragma once

#include <torch/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "models/classifier.h"

namespace convkit::train {

// The replicas are copies of the model that share its parameters' storage, each with its own
// flat gradient buffer; after the shards' backward passes their gradients are summed into
// `gradient`, the model's (see flatten_parameters), or by the optimiser inside its step (see
// share_shard_gradients). Empty: the whole batch on the model.
struct BatchShards {
  std::vector<models::Classifier> replicas;
  std::vector<torch::Tensor> replica_gradients;
  torch::Tensor gradient;
};

// `count` replicas of `model` (threads - 1); `flat` is the model's flatten_parameters buffer.
// None in exact mode, when a convolution is not fused (models/classifier.h) or when the
// network has batch norm or dropout (their results would depend on the split or on the order
// threads draw random numbers). Building them leaves the global generator as it was.
BatchShards make_shards(const models::ClassifierImpl& model, const torch::Tensor& flat, const std::string& model_name,
                        int64_t count);

// What a training run sets up around its network (after loading any weights into it): in
// exact mode or off the CPU nothing, the parameters as they are; otherwise the flat parameter
// buffer and the shards for `threads` threads.
struct FastPath {
  std::vector<torch::Tensor> parameters;  // what the optimiser updates
  BatchShards shards;
};
FastPath prepare_fast_path(models::ClassifierImpl& model, const std::string& model_name, int threads,
                           const torch::Device& device);

using LossFn = std::function<torch::Tensor(const torch::Tensor& logits, const torch::Tensor& y)>;
// Images and labels of rows [lo, hi) of the current batch, on the training device.
using BatchRows = std::function<std::pair<torch::Tensor, torch::Tensor>(int64_t lo, int64_t hi)>;

// Forward and backward of rows [begin, end) of a batch of n images, split into shards over the
// model and its replicas, one shard per thread; each shard gathers its own rows and clears its
// own gradient buffer. Each shard's loss gradient is its share of the whole batch (its rows / n),
// so the summed gradients are the rows' part of the batch's mean, and summed over the ranks of a
// data-parallel run (each with its rows) the whole batch's mean. Returns the rows' part of the
// batch's loss and accuracy. With all rows and no replicas this is the tutorial's plain step, to
// the bit (the share is 1.0). `sum_gradients`: add the replicas' gradients into the model's (else
// the optimiser reads them).
std::pair<double, double> sharded_forward_backward(models::ClassifierImpl& model, const BatchShards& shards,
                                                   int64_t begin, int64_t end, int64_t n, const BatchRows& rows,
                                                   const LossFn& loss_of, bool sum_gradients);

// calculate_accuracy: argmax(1) == y, counted, as float32 / batch size. Targets given as class
// probabilities [N, classes] (mixed batches) count their most probable class.
double batch_accuracy(const torch::Tensor& logits, const torch::Tensor& y);

}  // namespace convkit::train
