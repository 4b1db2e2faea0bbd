#include "dist/synchronous_allreduce.h"

#include <gloo/allreduce_halving_doubling.h>
#include <gloo/rendezvous/context.h>

#include <limits>
#include <stdexcept>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

namespace convkit::dist {

struct SynchronousAllreduce::Impl {
  std::shared_ptr<gloo::rendezvous::Context> context;
  std::unique_ptr<gloo::AllreduceHalvingDoubling<float>> algorithm;
  const float* bound = nullptr;
  int64_t bound_count = 0;
  bool spinning = false;

  void set_spin(bool spin) {
    for (int r = 0; r < context->size; ++r)
      if (r != context->rank) context->getPair(r)->setSync(true, spin);
    spinning = spin;
  }
};

SynchronousAllreduce::SynchronousAllreduce(const c10::intrusive_ptr<c10d::Store>& store,
                                           const std::shared_ptr<gloo::transport::Device>& device, int rank, int size,
                                           std::chrono::milliseconds timeout)
    : impl_(std::make_unique<Impl>()) {
  impl_->context = std::make_shared<gloo::rendezvous::Context>(rank, size);
  impl_->context->setTimeout(timeout);
  c10d::ProcessGroupGloo::GlooStore gloo_store(store);
  std::shared_ptr<gloo::transport::Device> dev = device;
  impl_->context->connectFullMesh(gloo_store, dev);
  impl_->set_spin(false);
}

SynchronousAllreduce::~SynchronousAllreduce() {
  try {
    impl_->algorithm.reset();  // Gloo's algorithms may throw from their destructors
  } catch (...) {
  }
}

void SynchronousAllreduce::sum(float* data, int64_t count, bool spin) {
  Impl& i = *impl_;
  if (i.context->size == 1 || count == 0) return;
  if (count > std::numeric_limits<int>::max()) throw std::length_error("a buffer of over 2^31 floats");
  if (data != i.bound || count != i.bound_count) {
    i.algorithm.reset();
    i.algorithm = std::make_unique<gloo::AllreduceHalvingDoubling<float>>(i.context, std::vector<float*>{data},
                                                                          static_cast<int>(count));
    i.bound = data;
    i.bound_count = count;
  }
  if (spin != i.spinning) i.set_spin(spin);
  i.algorithm->run();
}

}  // namespace convkit::dist
