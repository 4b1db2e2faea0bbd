// One float buffer summed over the ranks on the calling thread: Gloo's halving-doubling
// allreduce over connections of its own, switched to Gloo's synchronous mode. ProcessGroupGloo
// runs each collective on a worker thread and reads its sockets on a device thread; for a small
// network's gradient those hand-offs, each a thread that must wait for a core, cost more than the
// bytes. Here the thread that needs the sum sends and reads itself.
#pragma once

#include <c10/util/intrusive_ptr.h>

#include <chrono>
#include <cstdint>
#include <memory>

namespace c10d {
class Store;
}
namespace gloo::transport {
class Device;
}

namespace convkit::dist {

class SynchronousAllreduce {
 public:
  // Connects the `size` ranks through `store` (every rank passes the same keys' prefix) on
  // `device`. A read or write that waits longer than `timeout` fails. Throws what Gloo throws.
  SynchronousAllreduce(const c10::intrusive_ptr<c10d::Store>& store,
                       const std::shared_ptr<gloo::transport::Device>& device, int rank, int size,
                       std::chrono::milliseconds timeout);
  ~SynchronousAllreduce();
  SynchronousAllreduce(const SynchronousAllreduce&) = delete;
  SynchronousAllreduce& operator=(const SynchronousAllreduce&) = delete;

  // Sums `count` floats at `data` over the ranks in place; every rank ends with the same bytes,
  // the same from run to run. With `spin` the thread polls its sockets while the others catch up
  // instead of sleeping: faster when it has a core to itself, ruinous when it takes one from a
  // rank that is still computing. Every rank calls with buffers of the same length in the same
  // order; a call with another buffer than the last sets up the exchange again.
  void sum(float* data, int64_t count, bool spin);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace convkit::dist
