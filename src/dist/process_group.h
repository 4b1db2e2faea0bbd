// The processes of one data-parallel run, joined through PyTorch's c10d: a TCPStore for the
// rendezvous (hosted by rank 0, or torchrun's agent's), ProcessGroupGloo for the collectives.
// Every failure is an Error that names the rank at fault; nothing waits longer than the timeout.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "dist/environment.h"

namespace convkit::dist {

// How a rank waits for the others' gradients: `poll` busy-waits on its sockets (fastest, but it
// takes a core), `sleep` blocks in the kernel, `automatic` polls only where every thread of this
// machine's ranks has a core of its own.
enum class GradientWait { automatic, poll, sleep };

// The names of the GradientWait values ("auto", "poll", "sleep"), in the enum's order.
const std::vector<std::string>& gradient_wait_names();
const std::string& gradient_wait_name(GradientWait wait);
GradientWait gradient_wait_named(const std::string& name);  // an Error for any other name

class ProcessGroup {
 public:
  // Joins the group `env` describes. Rank 0 hosts the store unless torchrun's agent does; each
  // rank claims its RANK, announces its WORLD_SIZE and waits for the others, then Gloo connects
  // them. An Error within `timeout` when the store's port is in use or unreachable, a rank never
  // arrives, two processes claim one RANK, or the ranks disagree on WORLD_SIZE.
  ProcessGroup(const Environment& env, std::chrono::milliseconds timeout,
               GradientWait gradient_wait = GradientWait::automatic);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  bool is_main() const { return rank() == 0; }
  const Environment& environment() const;

  // Sums `tensors` (CPU, dense, one dtype) over the ranks, in place, as one collective. Every
  // rank ends with the same bytes.
  void allreduce_sum(std::vector<at::Tensor>& tensors) const;

  // Sums the training step's gradient (one contiguous float buffer) over the ranks in place, on
  // this thread, over connections of its own (see synchronous_allreduce.h). Every rank ends with
  // the same bytes. `spin`: poll while waiting for the others (see gradient_wait).
  void sum_gradient(const at::Tensor& gradient, bool spin) const;

  // How this rank waits for the gradient, poll or sleep: automatic decided on LibTorch's present
  // thread count.
  GradientWait gradient_wait() const;

  // Rank 0's values of `tensors` (CPU, any dtype, same shapes on every rank) on every rank.
  void broadcast(const std::vector<at::Tensor>& tensors) const;

  // Rank 0's `bytes` on every rank (the others pass anything).
  std::string broadcast_bytes(const std::string& bytes) const;

  // Every rank publishes `value` (a JSON object) as its `topic`; each compares its own with rank
  // 0's, and rank 0 with every rank's. An Error on every rank naming the first key that differs.
  void agree(const std::string& topic, const nlohmann::json& value) const;

  // Tells the other ranks why this one stops, so that their errors say so, and closes this
  // rank's connections so that none of them waits for it. Never throws.
  void report_failure(const std::string& message) noexcept;

  // Time spent in allreduce_sum and sum_gradient and how many calls, on this rank.
  double allreduce_seconds() const;
  int64_t allreduce_calls() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convkit::dist
