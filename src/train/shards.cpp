#include "train/shards.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "models/registry.h"
#include "train/flat_parameters.h"
#include "train/pytorch_random.h"
#include "util/runtime.h"

namespace convkit::train {

BatchShards make_shards(const models::ClassifierImpl& model, const torch::Tensor& flat, const std::string& model_name,
                        int64_t count) {
  if (count < 1 || model.exact() || !model.convolutions_fused()) return {};
  for (const auto& module : model.modules()) {
    const std::string kind = module->name();
    if (kind.find("BatchNorm") != std::string::npos || kind.find("Dropout") != std::string::npos) return {};
  }
  pin_blas_to_one_thread();  // the shards' dense layers call sgemm_ from several threads at once
  const torch::Tensor state = global_generator_state();
  const auto shared = model.named_parameters();
  const models::InferenceGraph graph = model.inference_graph();  // the classes and input to build replicas for
  BatchShards shards;
  shards.gradient = flat.grad();
  for (int64_t i = 0; i < count; ++i) {
    models::Classifier replica =
        models::make_model(model_name, graph.classes, {graph.channels, graph.height, graph.width});
    replica->set_exact(model.exact());
    for (auto& p : replica->named_parameters()) p.value().set_data(shared[p.key()]);
    shards.replica_gradients.push_back(attach_flat_gradients(*replica));
    shards.replicas.push_back(replica);
  }
  set_global_generator_state(state);
  return shards;
}

FastPath prepare_fast_path(models::ClassifierImpl& model, const std::string& model_name, int threads,
                           const torch::Device& device) {
  if (model.exact() || !device.is_cpu()) return {model.parameters(), {}};
  const torch::Tensor flat = flatten_parameters(model);
  return {{flat}, make_shards(model, flat, model_name, threads - 1)};
}

double batch_accuracy(const torch::Tensor& logits, const torch::Tensor& targets) {
  // Mixed targets (class probabilities) count their larger share as the label.
  const torch::Tensor y = targets.dim() == 2 ? targets.argmax(1) : targets;
  int64_t correct = 0;
  if (logits.device().is_cpu() && logits.scalar_type() == torch::kFloat && y.scalar_type() == torch::kLong) {
    // A plain loop (the first maximum wins, NaN wins, as in argmax) instead of five tensor ops.
    const torch::Tensor scores = logits.contiguous();
    const float* row = scores.data_ptr<float>();
    const int64_t classes = scores.size(1);
    const auto labels = y.accessor<int64_t, 1>();
    for (int64_t i = 0; i < scores.size(0); ++i, row += classes) {
      int64_t best = 0;
      for (int64_t c = 1; c < classes && !std::isnan(row[best]); ++c)
        if (row[c] > row[best] || std::isnan(row[c])) best = c;
      correct += best == labels[i];
    }
  } else {
    correct = logits.argmax(1).eq(y).sum().item<int64_t>();
  }
  return static_cast<float>(correct) / static_cast<float>(y.size(0));
}

std::pair<double, double> sharded_forward_backward(models::ClassifierImpl& model, const BatchShards& shards,
                                                   int64_t begin, int64_t end, int64_t n, const BatchRows& rows,
                                                   const LossFn& loss_of, bool sum_gradients) {
  const int64_t own = end - begin;
  const int64_t count = std::min<int64_t>(static_cast<int64_t>(shards.replicas.size()) + 1, own);
  // A rank with no rows of a short batch adds nothing to the gradient summed over the ranks.
  if (count == 0 && shards.gradient.defined()) shards.gradient.zero_();
  std::vector<double> loss(count), acc(count);
  at::parallel_for(0, count, 1, [&](int64_t first, int64_t last) {
    for (int64_t s = first; s < last; ++s) {
      const int64_t lo = begin + own * s / count, hi = begin + own * (s + 1) / count;
      const double share = static_cast<double>(hi - lo) / n;
      models::ClassifierImpl& net = s == 0 ? model : *shards.replicas[s - 1];
      if (shards.gradient.defined()) (s == 0 ? shards.gradient : shards.replica_gradients[s - 1]).zero_();
      const auto [x, y] = rows(lo, hi);
      const torch::Tensor logits = net.forward(x).logits;
      const torch::Tensor shard_loss = loss_of(logits, y);
      shard_loss.backward(torch::full({}, share, shard_loss.options()));
      loss[s] = shard_loss.item<double>() * share;
      acc[s] = batch_accuracy(logits, y) * share;
    }
  });
  // Replicas a short batch left idle hold the last step's gradients; an optimiser summing them
  // must find zeros.
  for (size_t s = std::max<int64_t>(count, 1); s <= shards.replicas.size(); ++s)
    shards.replica_gradients[s - 1].zero_();
  if (count > 1 && sum_gradients) {
    // The model's gradient += each replica's, element by element in replica order (the same
    // sums at any thread count), split over the threads.
    float* sum = shards.gradient.data_ptr<float>();
    std::vector<const float*> parts;
    for (int64_t s = 1; s < count; ++s) parts.push_back(shards.replica_gradients[s - 1].data_ptr<float>());
    at::parallel_for(0, shards.gradient.numel(), kFlatGrain, [&](int64_t begin, int64_t end) {
      for (const float* part : parts)
        for (int64_t i = begin; i < end; ++i) sum[i] += part[i];
    });
  }
  double total_loss = 0, total_acc = 0;
  for (int64_t s = 0; s < count; ++s) total_loss += loss[s], total_acc += acc[s];
  return {total_loss, total_acc};
}

}  // namespace convkit::train
