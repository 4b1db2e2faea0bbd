// The tutorial's test and rotated-test evaluation.
#pragma once

#include <torch/types.h>

#include <string>

#include "data/dataset.h"
#include "data/normalization.h"
#include "models/classifier.h"
#include "train/loop.h"

namespace convkit::eval {

struct TestResults {
  train::EpochStats test, rotated_test;
};

// Test set, then the test set with each image rotated by its own random angle in
// [-rotation, rotation]; draws from the global generator in the tutorial's order. With a group,
// the ranks share the batches (train::evaluate).
TestResults evaluate_test_sets(models::ClassifierImpl& model, const data::Split& test, const data::Normalization& norm,
                               double rotation, int64_t batch_size, const torch::Device& device, bool progress,
                               const dist::ProcessGroup* group = nullptr);

// The tutorial's two result lines: "Test Loss: ... | Test Acc: ...%" and the rotated one.
std::string test_lines(const TestResults& results);

}  // namespace convkit::eval
