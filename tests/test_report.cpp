#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <torch/torch.h>

#include "report/analysis.h"
#include "report/plots.h"
#include "report/tsne.h"
#include "test_util.h"

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
