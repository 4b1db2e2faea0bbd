// Real FashionMNIST from Debian's dataset-fashion-mnist (scripts/setup.sh installs it).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/dataset.h"
#include "data/normalization.h"
#include "models/registry.h"
#include "train/loop.h"

using namespace convkit;

TEST(RealData, FashionMnistLoadsWithTheTutorialsConstants) {
  const auto m = data::load_dataset(data::kDefaultDataDir);
  EXPECT_EQ(m.train.images.sizes(), (std::vector<int64_t>{60000, 1, 28, 28}));
  EXPECT_EQ(m.test.images.size(0), 10000);
  const auto norm = data::normalization_from(m.train.images);
  EXPECT_NEAR(norm.mean.at(0), 0.2860, 5e-5);
  EXPECT_NEAR(norm.std.at(0), 0.3530, 5e-5);
  // Every class is present in the training labels in equal numbers.
  EXPECT_TRUE(torch::bincount(m.train.labels).eq(6000).all().item<bool>());
  EXPECT_EQ(m.classes, data::class_names());  // told from other IDX sets by its test labels
  EXPECT_EQ(data::load_dataset(data::kDefaultDataDir, 100).classes, data::class_names());
}

TEST(RealData, ShortTrainingLowersTheLoss) {
  torch::manual_seed(1234);
  const auto m = data::load_dataset(data::kDefaultDataDir, 6000);
  const auto norm = data::normalization_from(m.train.images);
  const auto inputs = data::to_model_input(m.train.images, norm);
  const auto test_inputs = data::to_model_input(m.test.images, norm);
  for (const auto& name : models::model_names()) {
    auto model = models::make_model(name);
    torch::optim::Adam adam(model->parameters(), torch::optim::AdamOptions(1e-3));
    const torch::Device cpu(torch::kCPU);
    const auto before = train::evaluate(*model, test_inputs, m.test.labels, 256, cpu);
    const auto stats = train::train_epoch(*model, adam, inputs, m.train.labels, torch::randperm(6000), 64, cpu);
    const auto after = train::evaluate(*model, test_inputs, m.test.labels, 256, cpu);
    EXPECT_GT(before.loss, 2.0) << name;  // chance level: ln 10 = 2.30
    EXPECT_LT(after.loss, 0.9) << name;
    EXPECT_GT(after.acc, 0.65) << name;
    EXPECT_LT(stats.loss, before.loss) << name;
  }
}
