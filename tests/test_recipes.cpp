// The training recipes beyond the tutorial: weight averaging, test-time augmentation, mixing,
// random erasing, warm-up, weight decay that spares norms or is decoupled from SGD, and the
// learning-rate range test's rates, smoothing and suggestion.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <functional>
#include <vector>

#include "data/mixing.h"
#include "data/transforms.h"
#include "models/registry.h"
#include "models/test_time_augmentation.h"
#include "run/lr_find.h"
#include "train/flat_parameters.h"
#include "train/loop.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "train/weight_average.h"
#include "train/weight_decay.h"
#include "util/error.h"

using namespace convkit;

namespace {

const std::string kNet = "c8k3p1bn-mp2-dr0.1-fc32bn";

// A fixed, learnable set: the label is a bright bar at row 3 + 2 * label.
struct Batch {
  torch::Tensor x, y;
};
Batch bar_images(int64_t n = 128) {
  torch::manual_seed(0);
  Batch b{torch::randn({n, 1, 28, 28}) * 0.3, torch::randint(0, 10, {n})};
  for (int64_t i = 0; i < n; ++i)
    b.x.index_put_({i, 0, 3 + 2 * b.y[i].item<int64_t>(), torch::indexing::Slice(4, 24)}, 2.0);
  return b;
}

struct Trained {
  double first_loss = 0, last_loss = 0;
  torch::Tensor weights;  // every parameter, flattened, after training
};

// Three epochs of train_epoch over the bar images in batches of 32, with `adjust` setting the
// recipe under test; the loss is measured plainly (eval mode, no mixing) before and after.
Trained train_with(const std::function<void(train::OptimizerSettings&, train::StepSettings&)>& adjust,
                   uint64_t seed = 7) {
  const Batch b = bar_images();
  torch::manual_seed(seed);
  models::Classifier model = models::make_model(kNet);
  train::OptimizerSettings o;
  o.name = "adamw";
  o.lr = 3e-3;
  o.weight_decay = 0.05;
  train::StepSettings s;
  s.classes = 10;
  s.background = torch::full({1, 1, 1, 1}, -0.5);
  adjust(o, s);
  const torch::Tensor flat = train::flatten_parameters(*model);
  const auto optimizer = train::make_optimizer(o, {flat});
  s.weight_decay = train::step_weight_decay(o, *model);
  const auto plain_loss = [&] { return train::evaluate(*model, b.x, b.y, 128, torch::kCPU).loss; };
  Trained t;
  t.first_loss = plain_loss();
  for (int epoch = 0; epoch < 3; ++epoch)
    train::train_epoch(*model, *optimizer, b.x, b.y, torch::randperm(b.x.size(0)), 32, torch::kCPU, s);
  t.last_loss = plain_loss();
  t.weights = flat.detach().clone();
  return t;
}

}  // namespace

TEST(Recipes, EachOptionLowersTheLossAndIsDeterministicPerSeed) {
  train::ScheduleSettings warm;
  warm.warmup_epochs = 1;
  const train::LrSchedule warmup(warm, 3e-3, 4, 12);
  const std::vector<std::pair<std::string, std::function<void(train::OptimizerSettings&, train::StepSettings&)>>>
      recipes = {
          {"plain", [](auto&, auto&) {}},
          {"mixup", [](auto&, train::StepSettings& s) { s.mixing.mixup_alpha = 0.4; }},
          {"cutmix", [](auto&, train::StepSettings& s) { s.mixing.cutmix_alpha = 1.0; }},
          {"mixup+cutmix", [](auto&, train::StepSettings& s) { s.mixing.mixup_alpha = s.mixing.cutmix_alpha = 0.5; }},
          {"erase", [](auto&, train::StepSettings& s) { s.augmentation.erase = 0.5; }},
          {"warmup", [&](auto&, train::StepSettings& s) { s.schedule = &warmup; }},
          {"sgdw", [](train::OptimizerSettings& o,
                      auto&) { o.name = "sgdw", o.lr = 0.05, o.nesterov = true, o.weight_decay = 5e-3; }},
          {"no_decay_norms", [](train::OptimizerSettings& o, auto&) { o.no_decay_on_norms = true; }},
          {"adam+no_decay_norms", [](train::OptimizerSettings& o,
                                     auto&) { o.name = "adam", o.no_decay_on_norms = true, o.weight_decay = 1e-3; }},
      };
  for (const auto& [name, adjust] : recipes) {
    const Trained a = train_with(adjust), again = train_with(adjust), other = train_with(adjust, 8);
    EXPECT_LT(a.last_loss, 0.6 * a.first_loss) << name;
    EXPECT_TRUE(a.weights.equal(again.weights)) << name << ": not deterministic";
    EXPECT_FALSE(a.weights.equal(other.weights)) << name << ": the seed does not matter";
  }
}

TEST(Recipes, MixupWithAlphaZeroIsPlainTraining) {
  const Trained plain = train_with([](auto&, auto&) {});
  const Trained zero = train_with([](auto&, train::StepSettings& s) { s.mixing = data::Mixing{0, 0}; });
  EXPECT_TRUE(plain.weights.equal(zero.weights));
  // A mixed batch's loss is the cross-entropy with probability targets: with one-hot targets it
  // is the plain loss.
  const torch::Tensor logits = torch::randn({6, 10}), y = torch::randint(0, 10, {6});
  const data::MixedBatch unmixed = data::mix(torch::randn({6, 1, 28, 28}), y, 10, {});
  namespace F = torch::nn::functional;
  EXPECT_NEAR(F::cross_entropy(logits, unmixed.targets).item<double>(), F::cross_entropy(logits, y).item<double>(),
              1e-6);
}

TEST(Recipes, MixedTargetsMatchWhatWasMixed) {
  const torch::Tensor y = torch::arange(8) % 10;
  const torch::Tensor x = y.to(torch::kFloat).view({8, 1, 1, 1}).expand({8, 1, 28, 28}).contiguous();
  for (const data::Mixing m : {data::Mixing{0.4, 0}, data::Mixing{0, 1.0}}) {
    torch::manual_seed(3);
    const data::MixedBatch b = data::mix(x, y, 10, m);
    EXPECT_TRUE(b.targets.sum(1).allclose(torch::ones({8})));
    for (int64_t i = 0; i < 8; ++i) {
      // Each image is its own label's value blended with another's: its mean is the targets' mean label.
      const double expected = (b.targets[i] * torch::arange(10).to(torch::kFloat)).sum().item<double>();
      EXPECT_NEAR(b.inputs[i].mean().item<double>(), expected, 1e-4) << i;
    }
    torch::manual_seed(3);
    EXPECT_TRUE(data::mix(x, y, 10, m).inputs.equal(b.inputs));
  }
}

TEST(Recipes, WeightAverageEqualsAHandComputationOverThreeSteps) {
  torch::manual_seed(1);
  models::Classifier model = models::make_model("c4k3p1bn-mp2-fc8");
  models::Classifier copy = models::make_model("c4k3p1bn-mp2-fc8");
  train::WeightAverage average(copy, *model, 0.5);
  const auto first = [](models::ClassifierImpl& m) { return m.parameters().front(); };
  const torch::Tensor w0 = first(*model).detach().clone();
  EXPECT_TRUE(first(average.model()).equal(w0));  // it starts as a copy
  torch::Tensor expected = w0.clone();
  for (int n = 0; n < 3; ++n) {
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model->parameters()) p.add_(torch::randn_like(p));
      model->buffers().front().add_(1.0);  // a running mean moves too
    }
    // d = min(0.5, (1 + n) / (10 + n)): 0.1, 2/11, 0.25.
    const double d = std::min(0.5, (1.0 + n) / (10.0 + n));
    expected = d * expected + (1 - d) * first(*model).detach();
    average.update(*model);
  }
  EXPECT_TRUE(first(average.model()).allclose(expected, 1e-6, 1e-6));
  EXPECT_EQ(average.updates(), 3);
  // The running mean went 0 -> 1, 2, 3: 0.9, then 2/11 * 0.9 + 9/11 * 2 = 1.8, then 0.25 * 1.8 + 0.75 * 3.
  EXPECT_NEAR(average.model().buffers().front()[0].item<double>(), 2.7, 1e-5);
}

TEST(Recipes, TestTimeAugmentationOfAFlipSymmetricInputIsPlainEval) {
  torch::manual_seed(2);
  models::Classifier model = models::make_model("c8k3p1bn-mp2-fc32");
  model->eval();
  torch::Tensor x = torch::randn({5, 1, 28, 28});
  x = (x + x.flip(3)) / 2;  // mirror-symmetric
  torch::NoGradGuard no_grad;
  const torch::Tensor plain = torch::softmax(model->forward(x).logits, 1);
  const models::Classifier flip = models::with_tta(model, models::parse_tta("flip"), torch::zeros({1, 1, 1, 1}));
  flip->eval();
  EXPECT_TRUE(torch::softmax(flip->forward(x).logits, 1).allclose(plain, 1e-5, 1e-6));
  // With shifts it averages ten different views: not the plain output.
  const models::Classifier both = models::with_tta(model, models::parse_tta("flip,shift"), torch::zeros({1, 1, 1, 1}));
  both->eval();
  const torch::Tensor averaged = torch::softmax(both->forward(x).logits, 1);
  EXPECT_TRUE(averaged.sum(1).allclose(torch::ones({5})));
  EXPECT_FALSE(averaged.allclose(plain, 1e-5, 1e-6));
  // In training mode it is the network itself.
  both->train();
  model->train();
  torch::manual_seed(3);
  const torch::Tensor train_out = both->forward(x).logits;
  torch::manual_seed(3);
  EXPECT_TRUE(model->forward(x).logits.equal(train_out));
}

TEST(Recipes, TtaNamesAreParsedAndBadOnesNamed) {
  EXPECT_EQ(models::parse_tta("flip,shift").count(), 10);
  EXPECT_EQ(models::parse_tta("shift,flip").str(), "flip,shift");
  EXPECT_EQ(models::parse_tta("none").count(), 1);
  EXPECT_EQ(models::parse_tta("").str(), "none");
  EXPECT_THROW(models::parse_tta("flip,flip"), Error);
  try {
    models::parse_tta("mirror");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--tta: 'mirror'"), std::string::npos);
  }
}

TEST(Recipes, RandomErasingErasesBoxesAtTheGivenRate) {
  const torch::Tensor x = torch::ones({400, 1, 28, 28});
  torch::manual_seed(5);
  const torch::Tensor e = data::erase_boxes(x, 0.5);
  torch::manual_seed(5);
  EXPECT_TRUE(data::erase_boxes(x, 0.5).equal(e));
  int64_t erased = 0;
  for (int64_t i = 0; i < 400; ++i) {
    const torch::Tensor zeros = (e[i][0] == 0).nonzero();
    if (zeros.size(0) == 0) continue;
    ++erased;
    // One solid box of 2-33% of the image (rounding of the sides allows a little more).
    const int64_t h = (zeros.select(1, 0).max() - zeros.select(1, 0).min()).item<int64_t>() + 1;
    const int64_t w = (zeros.select(1, 1).max() - zeros.select(1, 1).min()).item<int64_t>() + 1;
    EXPECT_EQ(h * w, zeros.size(0)) << i;
    EXPECT_LE(zeros.size(0), 0.40 * 784) << i;
  }
  EXPECT_GT(erased, 150);
  EXPECT_LT(erased, 250);
  EXPECT_TRUE(data::erase_boxes(x, 0).equal(x));
}

TEST(Recipes, WarmupRisesLinearlyOnAnySchedule) {
  train::ScheduleSettings s;
  s.warmup_epochs = 2;
  const train::LrSchedule none(s, 0.1, 10, 100);
  EXPECT_TRUE(none.varies());
  EXPECT_NEAR(none.lr_at(0), 0.1 / 20, 1e-12);
  EXPECT_NEAR(none.lr_at(9), 0.1 / 2, 1e-12);
  EXPECT_NEAR(none.lr_at(19), 0.1, 1e-12);
  EXPECT_NEAR(none.lr_at(50), 0.1, 1e-12);
  s.name = "cosine";
  const train::LrSchedule cosine(s, 0.1, 10, 101);
  s.warmup_epochs = 0;
  const train::LrSchedule plain_cosine(s, 0.1, 10, 101);
  EXPECT_NEAR(cosine.lr_at(4), plain_cosine.lr_at(4) * 5 / 20, 1e-12);
  EXPECT_NEAR(cosine.lr_at(60), plain_cosine.lr_at(60), 1e-12);
  s.name = "none";
  EXPECT_FALSE(train::LrSchedule(s, 0.1, 10, 100).varies());
}

TEST(Recipes, WeightDecaySparesNormsAndIsDecoupledForSgdw) {
  torch::manual_seed(4);
  models::Classifier model = models::make_model("c4k3p1bn-mp2-fc8");
  train::OptimizerSettings o;
  o.name = "sgdw";
  o.weight_decay = 0.1;
  o.no_decay_on_norms = true;
  EXPECT_TRUE(train::step_applies_weight_decay(o));
  const train::WeightDecay decay = train::step_weight_decay(o, *model);
  EXPECT_TRUE(decay.decoupled);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  train::apply_weight_decay(decay, 0.5);
  const auto params = model->named_parameters();
  for (size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor& p = params[i].value();
    // Weights shrink by lr * rate; biases and batch norm stay.
    const torch::Tensor expected = p.dim() > 1 ? before[i] * (1 - 0.5 * 0.1) : before[i];
    EXPECT_TRUE(p.detach().allclose(expected, 1e-6, 1e-7)) << params[i].key();
  }
  o.name = "adam";  // coupled: rate * p joins the gradient of the weights only
  const train::WeightDecay coupled = train::step_weight_decay(o, *model);
  EXPECT_FALSE(coupled.decoupled);
  for (auto& p : model->parameters()) p.mutable_grad() = torch::zeros_like(p);
  train::apply_weight_decay(coupled, 0.5);
  for (const auto& p : model->parameters())
    EXPECT_TRUE(p.grad().allclose(p.dim() > 1 ? p.detach() * 0.1 : torch::zeros_like(p)));
  o.no_decay_on_norms = false;  // plain Adam keeps its own L2
  EXPECT_FALSE(train::step_applies_weight_decay(o));
  EXPECT_FALSE(train::step_weight_decay(o, *model).active());
}

TEST(Recipes, LrFindSuggestsTheSteepestDescentBeforeTheLowestLoss) {
  // Flat at first, with a dip in the first tenth that only noise would make (the slope at 0 is
  // the steepest of the curve); then the fall, steepest at 14; the lowest loss at 20; then
  // divergence, with a drop at the very end that lies past the lowest point.
  const std::vector<double> curve = {2.3,  1.5, 2.3, 2.3, 2.3, 2.3, 2.3,  2.3, 2.3,  2.3, 2.3, 2.3,
                                     2.25, 2.1, 1.8, 1.0, 0.8, 0.6, 0.55, 0.5, 0.48, 0.7, 2.5, 0.49};
  EXPECT_EQ(run::steepest_descent(curve), 14u);
  // Without the noisy start and the diverged end the same point, counted from the new start.
  EXPECT_EQ(run::steepest_descent({curve.begin() + 10, curve.begin() + 21}), 4u);
  // A loss that only rises after its second point: the lowest point, even in the first tenth.
  std::vector<double> rising = {2.3, 2.2};
  for (int i = 1; i <= 28; ++i) rising.push_back(2.2 + 0.5 * i);
  EXPECT_EQ(run::steepest_descent(rising), 1u);
  // Short curves: nothing to leave out at the start.
  EXPECT_EQ(run::steepest_descent({2.3, 2.2, 1.0, 0.95, 5.0}), 1u);
  EXPECT_EQ(run::steepest_descent({2.0, 1.0, 3.0}), 0u);
  EXPECT_EQ(run::steepest_descent({1.0}), 0u);
  EXPECT_EQ(run::steepest_descent({}), 0u);
}

TEST(Recipes, LrFindRatesRiseExponentiallyAndLossesAreSmoothedWithoutBias) {
  const run::LrFindSettings range;
  EXPECT_DOUBLE_EQ(run::lr_at_step(range, 0), range.start_lr);
  EXPECT_NEAR(run::lr_at_step(range, range.steps - 1), range.end_lr, 1e-12 * range.end_lr);
  const double ratio = std::pow(range.end_lr / range.start_lr, 1.0 / static_cast<double>(range.steps - 1));
  for (int64_t i = 1; i < range.steps; ++i)
    EXPECT_NEAR(run::lr_at_step(range, i) / run::lr_at_step(range, i - 1), ratio, 1e-12) << i;

  // A constant loss stays itself from the first value on (no pull towards zero), and a step in
  // the loss moves the average by (1 - beta) of it, divided by the bias correction.
  run::SmoothedLoss smoothed;
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(smoothed.add(2.0), 2.0, 1e-12);
  const double weight = std::pow(run::kSmoothingBeta, 6);
  const double expected = (2.0 * (run::kSmoothingBeta - weight) + 1.0 * (1 - run::kSmoothingBeta)) / (1 - weight);
  EXPECT_NEAR(smoothed.add(1.0), expected, 1e-12);

  run::LrFindSettings bad;
  bad.steps = 1;
  EXPECT_THROW(run::validate(bad), Error);
  bad = {};
  bad.start_lr = 0;
  EXPECT_THROW(run::validate(bad), Error);
  bad = {};
  bad.end_lr = bad.start_lr / 10;
  EXPECT_THROW(run::validate(bad), Error);
  EXPECT_NO_THROW(run::validate(run::LrFindSettings{}));
}
