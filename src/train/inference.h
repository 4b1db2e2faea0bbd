// Using a trained network: loading it from a checkpoint, the tutorial's test and rotated-test
// evaluation, and class probabilities for single images.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "models/models.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

namespace convkit::train {

struct LoadedModel {
  models::Classifier model;
  CheckpointInfo info;  // architecture and normalisation
};

// The architecture comes from `model_name` when given, else from model.json beside the
// checkpoint; the normalisation from model.json, else (a checkpoint written by Python) it is
// computed from the training images in `data_dir`, as the tutorial does.
LoadedModel load_model(const std::filesystem::path& checkpoint, const std::string& model_name,
                       const std::string& data_dir);

struct TestResults {
  EpochStats test, rotated_test;
};

// Test set, then the test set with each image rotated by its own random angle in
// [-rotation, rotation]; draws from the global generator in the tutorial's order.
TestResults evaluate_test_sets(models::ClassifierImpl& model, const data::Split& test, data::Normalization norm,
                               double rotation, int64_t batch_size, const torch::Device& device, bool progress);

// The tutorial's two result lines: "Test Loss: ... | Test Acc: ...%" and the rotated one.
std::string test_lines(const TestResults& results);

// Softmax probabilities [N, classes] for raw-pixel images [N, 28, 28] (0..255).
torch::Tensor predict_probabilities(models::ClassifierImpl& model, const torch::Tensor& pixels,
                                    data::Normalization norm, const torch::Device& device);

}  // namespace convkit::train
