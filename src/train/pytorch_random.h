// The random draws Python's tutorial makes besides its own, mirrored so that convkit's stream
// from the global generator stays aligned with PyTorch's; and that generator's state, for
// resuming.
#pragma once

#include <torch/types.h>

namespace convkit::train {

// Python's DataLoader draws from the global generator each time an iterator is created
// (the base seed for workers, drawn even with none).
void draw_loader_base_seed();

// RandomSampler's order in torch 1.13: a seed drawn from the global generator, then
// randperm(n) on a fresh generator seeded with it.
torch::Tensor random_sampler_order(int64_t n);

// The global generator's state, read and written under its lock (not held while anything
// draws from it).
torch::Tensor global_generator_state();
void set_global_generator_state(const torch::Tensor& state);

// The state of a fresh generator seeded with `seed` (a data-parallel rank's own, see DataParallel).
torch::Tensor generator_state_for_seed(uint64_t seed);

}  // namespace convkit::train
