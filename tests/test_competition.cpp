// The competition's building blocks: network specs, optimisers, schedules, augmentation.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "data/transforms.h"
#include "models/patch_whitening.h"
#include "models/registry.h"
#include "models/spec_net.h"
#include "run/options.h"
#include "run/sweep.h"
#include "train/optimizer.h"
#include "train/schedule.h"
#include "util/error.h"

using namespace convkit;

namespace {

std::string spec_error(const std::string& spec) {
  try {
    models::parse_spec(spec);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Spec, ValidSpecsAndTheirParameterCounts) {
  EXPECT_EQ(models::count_parameters(*models::make_model("c6k5-mp2-c16k5-mp2-fc120-fc84")), 44426);  // LeNet
  EXPECT_EQ(models::count_parameters(*models::make_model("lenet-bn")), 34666);
  // conv 1->8 k3 p1 (80) + bn (16) -> 28x28, pool 2 -> 14x14x8 = 1568 -> fc 32 (50208) -> out 10 (330)
  EXPECT_EQ(models::count_parameters(*models::make_model("c8k3p1bn-mp2-fc32-dr0.5")), 80 + 16 + 50208 + 330);
  // stride 2: 28 -> 13; average pool 13 -> 6; gelu; 4*6*6 = 144 -> 10
  EXPECT_EQ(models::count_parameters(*models::make_model("gelu-c4k3s2-ap2")), 40 + 1450);
  auto net = models::make_model("c8k3p1bn-mp2-fc32bn-dr0.5");
  const auto out = net->forward(torch::randn({3, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{3, 32}));
  std::vector<std::string> names;
  for (const auto& p : net->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names.front(), "conv1.weight");
  EXPECT_NE(std::find(names.begin(), names.end(), "bn_fc_1.weight"), names.end());
  EXPECT_EQ(names.back(), "fc_out.bias");
}

TEST(Spec, InvalidSpecsNameTheBadToken) {
  EXPECT_NE(spec_error("c6k5-xx3").find("at token 'xx3'"), std::string::npos);
  EXPECT_NE(spec_error("c6k5--mp2").find("empty token"), std::string::npos);
  EXPECT_NE(spec_error("c6k30").find("smaller than the kernel"), std::string::npos);
  EXPECT_NE(spec_error("fc10-c6k3").find("convolution after a dense layer"), std::string::npos);
  EXPECT_NE(spec_error("c6k5-mp50").find("pool larger"), std::string::npos);
  EXPECT_NE(spec_error("c0k3").find("must be positive"), std::string::npos);
  EXPECT_NE(spec_error("dr1.5").find("at token 'dr1.5'"), std::string::npos);
  EXPECT_EQ(spec_error("c6k5-mp2-dr0.25-fc10"), "no error");
  // Bounded before anything is allocated: numbers past int64, huge layers, too many weights.
  EXPECT_NE(spec_error("c99999999999999999999999k3").find("channels must be at most 4096"), std::string::npos);
  EXPECT_NE(spec_error("c8k3p9223372036854775807").find("padding must be at most 64"), std::string::npos);
  EXPECT_NE(spec_error("c4096k3p64").find("values per image"), std::string::npos);
  EXPECT_NE(spec_error("c64k3-fc65536").find("parameters up to here"), std::string::npos);
  EXPECT_NE(spec_error("fc65536-fc65536").find("at token 'fc65536'"), std::string::npos);
  EXPECT_NE(spec_error(std::string(5000, 'c')).find("at most 1000 characters"), std::string::npos);
  EXPECT_EQ(spec_error("c4096k3-mp2-fc10"), "no error");
}

TEST(PatchWhitening, WhitensThePatchesItWasFittedTo) {
  // Correlated images: smoothed noise plus a per-image offset, so the patch covariance is far
  // from the identity and has a mean to remove.
  torch::manual_seed(5);
  const torch::Tensor noise = torch::randn({300, 2, 12, 12});
  const torch::Tensor images = torch::avg_pool2d(noise, 3, 1, 1) + torch::randn({300, 1, 1, 1}) + 0.7;
  models::PatchWhitening layer(2, 3);
  models::fit_patch_whitening(*layer, images);
  ASSERT_EQ(layer->weight.sizes(), (std::vector<int64_t>{36, 2, 3, 3}));
  // The unpadded patches through the first half of the filters, in float64.
  const torch::Tensor patches =
      torch::nn::functional::unfold(images.to(torch::kDouble), torch::nn::functional::UnfoldFuncOptions(3))
          .transpose(1, 2)
          .reshape({-1, 18});
  const torch::Tensor w = layer->weight.slice(0, 0, 18).reshape({18, 18}).to(torch::kDouble);
  const torch::Tensor out = patches.mm(w.t()) + layer->bias.slice(0, 0, 18).to(torch::kDouble);
  const torch::Tensor centred = out - out.mean(0);
  const torch::Tensor covariance = centred.t().mm(centred) / out.size(0);
  // Hand computation: eigenvalue l of the patch covariance becomes l / (l + eps).
  const torch::Tensor p = patches - patches.mean(0);
  const torch::Tensor lambda = torch::linalg_eigvalsh(p.t().mm(p) / patches.size(0));
  const torch::Tensor expected = torch::diag(lambda / (lambda + models::kWhiteningEps));
  EXPECT_LT(out.mean(0).abs().max().item<double>(), 1e-4);
  EXPECT_LT((covariance - expected).abs().max().item<double>(), 1e-3);
  EXPECT_GT(expected.diag().min().item<double>(), 0.5);  // the test is not of a degenerate case
  // The second half is the negation, so a ReLU after the layer keeps everything.
  EXPECT_TRUE(torch::equal(layer->weight.slice(0, 18), -layer->weight.slice(0, 0, 18)));
  // Deterministic, signs included.
  models::PatchWhitening again(2, 3);
  models::fit_patch_whitening(*again, images);
  EXPECT_TRUE(torch::equal(again->weight, layer->weight));
  EXPECT_THROW(models::fit_patch_whitening(*layer, torch::randn({4, 3, 12, 12})), Error);
}

TEST(PatchWhitening, IsAFrozenFirstLayerThatTrainingLeavesAlone) {
  EXPECT_NE(spec_error("c8k3-pw3").find("first layer"), std::string::npos);
  EXPECT_NE(spec_error("pw40").find("kernel"), std::string::npos);
  torch::manual_seed(2);
  const auto y = torch::randint(0, 10, {64});
  auto x = torch::randn({64, 1, 28, 28}) * 0.3;
  for (int64_t i = 0; i < 64; ++i)
    x.index_put_({i, 0, 3 + 2 * y[i].item<int64_t>(), torch::indexing::Slice(4, 24)}, 2.0);
  std::vector<double> finals;
  for (int run = 0; run < 2; ++run) {
    torch::manual_seed(1);
    auto model = models::make_model("pw3-c16k3p1bn-mp2-fc32");
    EXPECT_EQ(models::count_parameters(*model),
              models::count_parameters(*models::make_model("c16k3p1bn-mp2-fc32", 10, {18, 28, 28})));
    const auto buffers = model->named_buffers();
    ASSERT_TRUE(buffers.contains("whiten.weight") && buffers.contains("whiten.bias"));
    models::fit_patch_whitening(*model->named_modules()["whiten"]->as<models::PatchWhiteningImpl>(), x);
    const torch::Tensor fitted = buffers["whiten.weight"].clone();
    auto opt = train::make_optimizer(train::OptimizerSettings{}, model->parameters(), false);
    double first = 0, last = 0;
    for (int step = 0; step < 30; ++step) {
      opt->zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(x).logits, y);
      loss.backward();
      opt->step();
      (step == 0 ? first : last) = loss.item<double>();
    }
    EXPECT_LT(last, 0.5 * first);
    EXPECT_TRUE(torch::equal(buffers["whiten.weight"], fitted));
    finals.push_back(last);
  }
  EXPECT_EQ(finals[0], finals[1]);
}

TEST(Optimisers, EachOptimiserAndScheduleLowersTheLoss) {
  // A fixed, learnable batch: the label is written as a bright bar at row 3 + 2 * label.
  torch::manual_seed(0);
  const auto y = torch::randint(0, 10, {64});
  auto x = torch::randn({64, 1, 28, 28}) * 0.3;
  for (int64_t i = 0; i < 64; ++i)
    x.index_put_({i, 0, 3 + 2 * y[i].item<int64_t>(), torch::indexing::Slice(4, 24)}, 2.0);
  for (const std::string optimizer : {"adam", "adamw", "sgd", "rmsprop"}) {
    for (const std::string schedule : {"none", "step", "cosine", "onecycle"}) {
      run::TrainOptions o;
      o.optimizer.name = optimizer;
      o.schedule.name = schedule;
      o.schedule.step_size = 1;
      o.schedule.gamma = 0.5;
      o.optimizer.lr = optimizer == "sgd" ? 0.1 : optimizer == "rmsprop" ? 1e-3 : 3e-3;
      o.optimizer.nesterov = optimizer == "sgd";
      o.optimizer.weight_decay = 1e-4;
      torch::manual_seed(1);
      auto model = models::make_model("lenet");
      auto opt = train::make_optimizer(o.optimizer, model->parameters(), o.exact);
      const int steps = 60;
      const train::LrSchedule schedule_of_run(o.schedule, o.optimizer.lr, 10, steps);
      double first = 0, last = 0;
      for (int step = 0; step < steps; ++step) {
        const double lr = schedule_of_run.lr_at(step);
        for (auto& g : opt->param_groups()) g.options().set_lr(lr);
        opt->zero_grad();
        auto loss = torch::nn::functional::cross_entropy(model->forward(x).logits, y);
        loss.backward();
        opt->step();
        (step == 0 ? first : last) = loss.item<double>();
      }
      EXPECT_LT(last, 0.5 * first) << optimizer << " + " << schedule;
    }
  }
}

TEST(Optimisers, SchedulesHaveTheirShapes) {
  run::TrainOptions o;
  o.optimizer.lr = 0.1;
  o.schedule.name = "onecycle";
  const auto scheduled_lr = [&o](int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
    return train::LrSchedule(o.schedule, o.optimizer.lr, steps_per_epoch, total_steps).lr_at(step);
  };
  EXPECT_NEAR(scheduled_lr(0, 10, 101), 0.1 / 25, 1e-12);
  EXPECT_NEAR(scheduled_lr(30, 10, 101), 0.1, 1e-12);  // peak at 30%
  EXPECT_NEAR(scheduled_lr(100, 10, 101), 0.1 / 25 / 1e4, 1e-12);
  o.schedule.name = "cosine";
  EXPECT_NEAR(scheduled_lr(0, 10, 101), 0.1, 1e-12);
  EXPECT_NEAR(scheduled_lr(50, 10, 101), 0.05, 1e-12);
  EXPECT_NEAR(scheduled_lr(100, 10, 101), 0.0, 1e-12);
  o.schedule.name = "step";
  o.schedule.step_size = 2;
  o.schedule.gamma = 0.5;
  EXPECT_DOUBLE_EQ(scheduled_lr(19, 10, 100), 0.1);   // epoch 1
  EXPECT_DOUBLE_EQ(scheduled_lr(20, 10, 100), 0.05);  // epoch 2
  EXPECT_DOUBLE_EQ(scheduled_lr(45, 10, 100), 0.025);
}

TEST(Augmentation, KeepsShapesIsSeededAndStaysInRange) {
  // One bright pixel at the centre of each image: where it lands measures the shift.
  auto x = torch::full({200, 1, 28, 28}, -0.5f);
  x.index_put_({torch::indexing::Slice(), 0, 14, 14}, 3.f);
  data::Augmentation shift;
  shift.translate = 3;
  torch::manual_seed(4);
  const auto a = data::augment(x, shift, torch::full({1, 1, 1, 1}, -0.5f));
  torch::manual_seed(4);
  EXPECT_TRUE(data::augment(x, shift, torch::full({1, 1, 1, 1}, -0.5f)).equal(a));
  EXPECT_EQ(a.sizes(), x.sizes());
  std::set<std::pair<int64_t, int64_t>> offsets;
  for (int64_t i = 0; i < 200; ++i) {
    const auto pos = (a[i][0] == 3.f).nonzero();
    ASSERT_EQ(pos.size(0), 1) << i;
    const int64_t dy = pos[0][0].item<int64_t>() - 14, dx = pos[0][1].item<int64_t>() - 14;
    EXPECT_LE(std::abs(dx), 3);
    EXPECT_LE(std::abs(dy), 3);
    offsets.insert({dx, dy});
  }
  EXPECT_GT(offsets.size(), 20u);  // spread over the 49 possible shifts
  // Uncovered pixels get the background value; nothing else appears.
  EXPECT_TRUE(((a == -0.5f) | (a == 3.f)).all().item<bool>());

  data::Augmentation flip;
  flip.hflip = true;
  const auto img = torch::randn({100, 1, 28, 28});
  const auto f = data::augment(img, flip, torch::zeros({1, 1, 1, 1}));
  int flipped = 0;
  for (int64_t i = 0; i < 100; ++i) {
    const bool same = f[i].equal(img[i]), mirrored = f[i].equal(img[i].flip(2));
    EXPECT_TRUE(same || mirrored) << i;
    flipped += mirrored;
  }
  EXPECT_GT(flipped, 25);
  EXPECT_LT(flipped, 75);

  data::Augmentation rotate;
  rotate.rotate_degrees = 30;
  auto bar = torch::full({50, 1, 28, 28}, 0.f);
  bar.index_put_({torch::indexing::Slice(), 0, 14, torch::indexing::Slice(2, 26)}, 1.f);  // horizontal bar
  const auto r = data::augment(bar, rotate, torch::zeros({1, 1, 1, 1}));
  for (int64_t i = 0; i < 50; ++i) {
    // The bar's ends rise or fall by at most sin(30 deg) * 12 pixels (+1 for rounding).
    const auto rows = (r[i][0] > 0.5f).nonzero().select(1, 0);
    EXPECT_LE((rows.max() - rows.min()).item<int64_t>(), 2 * 7 + 1) << i;
  }
}

TEST(Sweep, TrialsFromGridAndRandomSpaces) {
  const auto grid = run::sweep_trials(
      nlohmann::json::parse(
          R"({"base": {"epochs": 2}, "grid": {"lr": [0.1, 0.01], "model": ["lenet", "mlp", "lenet-bn"]}})"),
      "s.json");
  ASSERT_EQ(grid.size(), 6u);
  for (const auto& t : grid) EXPECT_EQ(t["epochs"], 2);
  const auto random = run::sweep_trials(
      nlohmann::json::parse(
          R"({"random": {"trials": 20, "seed": 3, "space": {"lr": {"log_uniform": [1e-4, 1e-2]}, "batch_size": [32, 64]}}})"),
      "s.json");
  ASSERT_EQ(random.size(), 20u);
  for (const auto& t : random) {
    EXPECT_GE(t["lr"].get<double>(), 1e-4);
    EXPECT_LE(t["lr"].get<double>(), 1e-2);
    EXPECT_TRUE(t["batch_size"] == 32 || t["batch_size"] == 64);
  }
  auto error_of = [](const char* text) {
    try {
      run::sweep_trials(nlohmann::json::parse(text), "s.json");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of(R"({"grid": {"lr": [0.1]}, "random": {}})").find("exactly one"), std::string::npos);
  EXPECT_NE(error_of(R"({"grid": {"learning_rate": [0.1]}})").find("unknown setting 'learning_rate'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"grid": {"lr": [-1]}})").find("--lr"), std::string::npos);
  EXPECT_NE(error_of(R"({"grid": {"model": ["vgg"]}})").find("unknown model"), std::string::npos);
  EXPECT_NE(error_of(R"({"random": {"trials": 2, "space": {"lr": {"normal": [0, 1]}}}})").find("random space for 'lr'"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"grid": {"lr": [0.1]}, "budget": 3})").find("unknown key 'budget'"), std::string::npos);
}
