#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "models/classifier.h"
#include "report/analysis.h"
#include "report/calibration.h"
#include "report/plots.h"
#include "report/saliency.h"
#include "report/tsne.h"
#include "test_util.h"
#include "util/error.h"

using namespace convkit;
using convkit::testing::TempDir;

namespace {

// Decodes a PNG and checks its size and that it is not a blank (single-colour) image.
void expect_real_png(const std::filesystem::path& file, int width, int height) {
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load(file.string().c_str(), &w, &h, &c, 1);
  ASSERT_NE(data, nullptr) << file << ": " << stbi_failure_reason();
  EXPECT_EQ(w, width) << file;
  EXPECT_EQ(h, height) << file;
  const auto [lo, hi] = std::minmax_element(data, data + w * h);
  EXPECT_GT(*hi - *lo, 100) << file << " looks blank";
  stbi_image_free(data);
}

double knn_accuracy(const torch::Tensor& points, const torch::Tensor& labels, int k) {
  const torch::Tensor d = torch::cdist(points, points);
  d.diagonal().fill_(std::numeric_limits<float>::infinity());
  const torch::Tensor neighbours = std::get<1>(d.topk(k, 1, false));
  const torch::Tensor votes = labels.index({neighbours});  // [N, k]
  const torch::Tensor predicted = std::get<0>(votes.mode(1));
  return predicted.eq(labels).to(torch::kDouble).mean().item<double>();
}

// logits = W x + b over the flattened image, through the project's linear layer (outside exact
// mode the fused op, whose backward adds into weight.grad() itself). Remembers whether its last
// forward pass ran in training mode.
class LinearClassifier : public models::ClassifierImpl {
 public:
  LinearClassifier(int64_t inputs, int64_t classes) { fc = register_module("fc", torch::nn::Linear(inputs, classes)); }
  models::Output forward(const torch::Tensor& x) override {
    last_forward_training = is_training();
    const torch::Tensor h = x.flatten(1);
    return {linear(*fc, h), h};
  }
  models::InferenceGraph inference_graph() const override { return {}; }

  torch::nn::Linear fc{nullptr};
  bool last_forward_training = true;
};

// |W[class]| over the image's [C, H, W], the largest over the channels, scaled to a peak of 1:
// the saliency of a linear classifier, by hand.
torch::Tensor linear_saliency(const LinearClassifier& model, const torch::Tensor& classes, torch::IntArrayRef image) {
  std::vector<torch::Tensor> maps;
  for (int64_t i = 0; i < classes.size(0); ++i) {
    const torch::Tensor map = model.fc->weight.detach()[classes[i].item<int64_t>()].abs().view(image).amax(0);
    maps.push_back(map / map.max());
  }
  return torch::stack(maps);
}

}  // namespace

TEST(ClassificationReport, MatchesAHandComputation) {
  // truth:     0 0 0 1 1 2
  // predicted: 0 0 1 1 2 2
  const auto truth = torch::tensor({0, 0, 0, 1, 1, 2}, torch::kInt64);
  const auto pred = torch::tensor({0, 0, 1, 1, 2, 2}, torch::kInt64);
  const auto r = report::classification_report(truth, pred, 4);
  EXPECT_EQ(r.confusion.sum().item<int64_t>(), 6);
  EXPECT_EQ(r.confusion[0][0].item<int64_t>(), 2);
  EXPECT_EQ(r.confusion[0][1].item<int64_t>(), 1);
  EXPECT_EQ(r.confusion[1][2].item<int64_t>(), 1);
  EXPECT_DOUBLE_EQ(r.per_class[0].precision, 1.0);
  EXPECT_DOUBLE_EQ(r.per_class[0].recall, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.per_class[0].f1, 0.8);
  EXPECT_DOUBLE_EQ(r.per_class[1].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[1].recall, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[2].precision, 0.5);
  EXPECT_DOUBLE_EQ(r.per_class[2].recall, 1.0);
  EXPECT_EQ(r.per_class[3].support, 0);  // absent class: zeros, as scikit-learn's zero_division=0
  EXPECT_DOUBLE_EQ(r.per_class[3].f1, 0.0);
  EXPECT_DOUBLE_EQ(r.accuracy, 4.0 / 6);
  EXPECT_DOUBLE_EQ(r.macro.precision, (1.0 + 0.5 + 0.5 + 0) / 4);
  EXPECT_DOUBLE_EQ(r.weighted.recall, (3 * (2.0 / 3) + 2 * 0.5 + 1 * 1.0) / 6);  // = accuracy
}

TEST(Pca, RecoversTheDirectionOfLargestVariance) {
  torch::manual_seed(3);
  const auto direction = torch::tensor({3.0, -1.0, 2.0, 0.5}) / std::sqrt(14.25);
  const auto t = torch::randn({400, 1}, torch::kDouble) * 10;
  const auto x = t * direction.view({1, 4}) + torch::randn({400, 4}, torch::kDouble) * 0.1 + 5;
  const auto projected = report::pca_2d(x).to(torch::kDouble);
  EXPECT_EQ(projected.sizes(), (std::vector<int64_t>{400, 2}));
  // The first coordinate is the position along `direction` (up to sign).
  const double corr =
      std::abs(torch::corrcoef(torch::stack({projected.select(1, 0), t.squeeze(1)}))[0][1].item<double>());
  EXPECT_GT(corr, 0.999);
  EXPECT_GT(projected.select(1, 0).var().item<double>(), 50 * projected.select(1, 1).var().item<double>());
}

TEST(Tsne, SeparatesSyntheticClusters) {
  torch::manual_seed(11);
  const int clusters = 5, per = 80;
  const auto centres = torch::randn({clusters, 30}) * 6;
  const auto labels = torch::arange(clusters).repeat_interleave(per);
  const auto x = centres.index_select(0, labels) + torch::randn({clusters * per, 30});
  report::TsneOptions options;
  options.iterations = 500;
  const auto y = report::tsne_2d(x, options);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{clusters * per, 2}));
  EXPECT_TRUE(torch::isfinite(y).all().item<bool>());
  EXPECT_GE(knn_accuracy(y, labels, 5), 0.95);
  EXPECT_TRUE(report::tsne_2d(x, options).equal(y));  // deterministic
}

TEST(Plots, EveryKindDecodesAndIsNotBlank) {
  TempDir dir;
  report::plot_lines(dir / "lines.png", "t", "x", "y",
                     {{"a", {1, 2, 3}, {0.5, 0.7, 0.9}}, {"b", {1, 2, 3}, {0.4, 0.6, 0.6}}});
  expect_real_png(dir / "lines.png", 800, 560);
  std::vector<report::Panel> panels;
  for (int i = 0; i < 4; ++i) {
    report::Panel p;
    p.height = p.width = 28;
    for (int k = 0; k < 784; ++k) p.pixels.push_back(static_cast<float>((k * (i + 1)) % 255));
    p.caption = "image " + std::to_string(i);
    panels.push_back(p);
  }
  report::plot_image_grid(dir / "grid.png", "grid", panels, 2, 2, report::ColourMap::Bone, 400);
  int w, h, c;
  ASSERT_NE(stbi_info((dir / "grid.png").string().c_str(), &w, &h, &c), 0);
  expect_real_png(dir / "grid.png", 400, h);
  std::vector<std::vector<int64_t>> counts = {{5, 1}, {2, 7}};
  report::plot_confusion(dir / "confusion.png", counts, {"a", "b"}, "c");
  expect_real_png(dir / "confusion.png", 900, 820);
  report::plot_scatter(dir / "scatter.png", "s", {0, 1, 2, 3}, {1, 0, 1, 0}, {0, 1, 0, 1}, {"a", "b"});
  expect_real_png(dir / "scatter.png", 900, 760);
  EXPECT_FALSE(std::filesystem::exists(dir / "scatter.png.tmp"));
}

TEST(Calibration, MatchesAHandComputation) {
  // 3 bins: (0, 1/3], (1/3, 2/3], (2/3, 1].
  //   highest probability  predicted  label   bin
  //   0.5                  0          0       1  right
  //   0.625                1          1       1  right
  //   0.75                 0          0       2  right
  //   0.875                1          1       2  right
  //   0.75                 2          0       2  wrong
  //   0.9375               2          0       2  wrong
  // bin 0: empty. bin 1: 2 images, accuracy 1, confidence 0.5625, gap 0.4375 (underconfident).
  // bin 2: 4 images, accuracy 0.5, confidence 3.3125 / 4 = 0.828125, gap 0.328125 (overconfident).
  // ECE = 2/6 * 0.4375 + 4/6 * 0.328125 = 2.1875 / 6. (Neither the unweighted mean of the gaps,
  // 0.3828, nor the overall gap |4/6 - 4.4375/6| = 0.0729 is that.)
  const auto probabilities = torch::tensor({0.5, 0.25, 0.25, 0.25, 0.625, 0.125, 0.75, 0.125, 0.125, 0.0625, 0.875,
                                            0.0625, 0.125, 0.125, 0.75, 0.03125, 0.03125, 0.9375},
                                           torch::kFloat)
                                 .view({6, 3});
  const auto labels = torch::tensor({0, 1, 0, 1, 0, 0}, torch::kInt64);
  const report::Calibration c = report::calibration(probabilities, labels, 3);
  EXPECT_DOUBLE_EQ(c.ece, 2.1875 / 6);
  EXPECT_EQ(c.samples, 6);
  ASSERT_EQ(c.bins.size(), 3u);
  EXPECT_EQ(c.bins[0].count, 0);
  EXPECT_EQ(c.bins[1].count, 2);
  EXPECT_DOUBLE_EQ(c.bins[1].accuracy, 1.0);
  EXPECT_DOUBLE_EQ(c.bins[1].confidence, 0.5625);
  EXPECT_EQ(c.bins[2].count, 4);
  EXPECT_DOUBLE_EQ(c.bins[2].accuracy, 0.5);
  EXPECT_DOUBLE_EQ(c.bins[2].confidence, 0.828125);
  EXPECT_DOUBLE_EQ(c.bins[1].lower, 1.0 / 3);
  EXPECT_DOUBLE_EQ(c.bins[1].upper, 2.0 / 3);
}

TEST(Calibration, PerfectlyCalibratedPredictionsHaveNoError) {
  // Four at 0.75 with three right, two at 0.5 with one right, one at 1 and right.
  const auto probabilities = torch::tensor({0.75,  0.125, 0.125, 0.75, 0.125, 0.125, 0.75, 0.125, 0.125, 0.75, 0.125,
                                            0.125, 0.25,  0.5,   0.25, 0.25,  0.5,   0.25, 0.0,   0.0,   1.0},
                                           torch::kFloat)
                                 .view({7, 3});
  const report::Calibration c = report::calibration(probabilities, torch::tensor({0, 0, 0, 1, 1, 2, 2}));
  EXPECT_DOUBLE_EQ(c.ece, 0.0);
  EXPECT_EQ(c.bins.size(), static_cast<size_t>(report::kCalibrationBins));
  // The same predictions all wrong: the error is the mean confidence, (4 * 0.75 + 2 * 0.5 + 1) / 7.
  EXPECT_DOUBLE_EQ(report::calibration(probabilities, torch::tensor({1, 1, 1, 1, 0, 0, 0})).ece, 5.0 / 7);
}

TEST(Calibration, AConfidenceOnAnEdgeBelongsToTheBinBelow) {
  // 4 bins: 0.5 is the upper edge of (0.25, 0.5], 0.75 that of (0.5, 0.75].
  const auto probabilities = torch::tensor({0.5, 0.25, 0.25, 0.75, 0.125, 0.125}, torch::kFloat).view({2, 3});
  const report::Calibration c = report::calibration(probabilities, torch::tensor({0, 0}), 4);
  EXPECT_EQ(c.bins[1].count, 1);
  EXPECT_EQ(c.bins[2].count, 1);
  EXPECT_EQ(c.bins[3].count, 0);
}

TEST(Calibration, JsonHasTheErrorAndEveryBin) {
  torch::manual_seed(2);
  const auto probabilities = torch::softmax(torch::randn({50, 4}) * 3, 1);
  const auto labels = torch::randint(4, {50}, torch::kInt64);
  const report::Calibration c = report::calibration(probabilities, labels);
  const nlohmann::json j = report::calibration_json(c);
  EXPECT_DOUBLE_EQ(j.at("ece").get<double>(), c.ece);
  EXPECT_EQ(j.at("samples"), 50);
  ASSERT_EQ(j.at("bins").size(), static_cast<size_t>(report::kCalibrationBins));
  int64_t counted = 0;
  for (size_t b = 0; b < c.bins.size(); ++b) {
    counted += j["bins"][b].at("count").get<int64_t>();
    EXPECT_DOUBLE_EQ(j["bins"][b].at("accuracy").get<double>(), c.bins[b].accuracy);
    EXPECT_DOUBLE_EQ(j["bins"][b].at("confidence").get<double>(), c.bins[b].confidence);
  }
  EXPECT_EQ(counted, 50);
  EXPECT_DOUBLE_EQ(j["bins"][0].at("lower").get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(j["bins"][report::kCalibrationBins - 1].at("upper").get<double>(), 1.0);
}

TEST(Calibration, RejectsMismatchedShapes) {
  EXPECT_THROW(report::calibration(torch::rand({4, 3}), torch::zeros({5}, torch::kInt64)), Error);
  EXPECT_THROW(report::calibration(torch::rand({4}), torch::zeros({4}, torch::kInt64)), Error);
  EXPECT_THROW(report::calibration(torch::rand({4, 3}), torch::zeros({4}, torch::kInt64), 0), Error);
}

TEST(ConfidentMistakes, AreTheWrongPredictionsMostConfidentFirst) {
  const auto probabilities =
      torch::tensor({0.9, 0.1, 0.6, 0.4, 0.2, 0.8, 0.3, 0.7, 0.95, 0.05}, torch::kFloat).view({5, 2});
  const auto labels = torch::tensor({1, 1, 1, 0, 0}, torch::kInt64);  // images 0, 1 and 3 are wrong
  EXPECT_TRUE(report::most_confident_mistakes(probabilities, labels, 25).equal(torch::tensor({0, 3, 1})));
  EXPECT_TRUE(report::most_confident_mistakes(probabilities, labels, 2).equal(torch::tensor({0, 3})));
}

TEST(Saliency, OfALinearClassifierIsTheAbsoluteWeightRowOfTheClass) {
  torch::manual_seed(5);
  LinearClassifier model(2 * 3 * 4, 5);
  const auto x = torch::randn({3, 2, 3, 4});
  const auto predicted = model.fc->forward(x.flatten(1)).argmax(1);
  const auto maps = report::saliency_maps(model, x);
  EXPECT_EQ(maps.sizes(), (std::vector<int64_t>{3, 3, 4}));
  EXPECT_TRUE(torch::allclose(maps, linear_saliency(model, predicted, {2, 3, 4}), 1e-6, 1e-6));
  // Another class per image: that class's row.
  const auto other = (predicted + 1) % 5;
  EXPECT_TRUE(
      torch::allclose(report::saliency_maps(model, x, other), linear_saliency(model, other, {2, 3, 4}), 1e-6, 1e-6));
}

TEST(Saliency, RunsInEvalModeAndLeavesTheModelAsItWas) {
  torch::manual_seed(6);
  LinearClassifier model(2 * 3 * 4, 5);
  model.train();
  model.fc->bias.requires_grad_(false);
  report::saliency_maps(model, torch::randn({4, 2, 3, 4}));
  EXPECT_FALSE(model.last_forward_training);
  EXPECT_TRUE(model.is_training());
  EXPECT_FALSE(model.fc->weight.grad().defined());
  EXPECT_FALSE(model.fc->bias.grad().defined());
  EXPECT_TRUE(model.fc->weight.requires_grad());
  EXPECT_FALSE(model.fc->bias.requires_grad());
  // Gradients a training step left behind are not added to.
  model.fc->weight.mutable_grad() = torch::ones_like(model.fc->weight);
  model.eval();
  report::saliency_maps(model, torch::randn({4, 2, 3, 4}));
  EXPECT_TRUE(model.fc->weight.grad().equal(torch::ones_like(model.fc->weight)));
  EXPECT_FALSE(model.is_training());
}

TEST(Saliency, WorksOnInputMadeInInferenceMode) {
  torch::manual_seed(7);
  LinearClassifier model(1 * 4 * 4, 3);
  torch::InferenceMode inference;
  const auto x = torch::randn({2, 1, 4, 4});
  const auto maps = report::saliency_maps(model, x);
  EXPECT_TRUE(torch::allclose(maps.amax({1, 2}), torch::ones({2})));
}

TEST(Saliency, OverlayKeepsTheImageWhereNothingIsSalient) {
  const auto grey = torch::arange(6, torch::kFloat).view({2, 3}) * 40;  // 0 ... 200
  auto saliency = torch::zeros({2, 3});
  saliency[1][2] = 1;  // the 200 pixel
  const auto rgb = report::saliency_overlay(grey, saliency);
  ASSERT_EQ(rgb.sizes(), (std::vector<int64_t>{3, 2, 3}));
  for (int c = 0; c < 3; ++c) {
    EXPECT_TRUE(rgb[c][0].equal(grey[0])) << c;
    EXPECT_TRUE(rgb[c][1].slice(0, 0, 2).equal(grey[1].slice(0, 0, 2))) << c;
  }
  // Where the saliency peaks the pixel turns a warm colour: red and green up, blue down.
  EXPECT_GT(rgb[0][1][2].item<float>(), 220);
  EXPECT_GT(rgb[1][1][2].item<float>(), 220);
  EXPECT_LT(rgb[2][1][2].item<float>(), 100);
}

TEST(Plots, ReliabilityDiagramDecodesAndIsNotBlank) {
  TempDir dir;
  torch::manual_seed(4);
  const auto probabilities = torch::softmax(torch::randn({200, 10}) * 4, 1);
  const auto c = report::calibration(probabilities, torch::randint(10, {200}, torch::kInt64));
  report::plot_reliability(dir / "reliability.png", "r", c);
  expect_real_png(dir / "reliability.png", 760, 720);
  EXPECT_FALSE(std::filesystem::exists(dir / "reliability.png.tmp"));
}
