#include "report/figures.h"

#include <torch/torch.h>

#include <algorithm>
#include <functional>

#include "models/patch_whitening.h"
#include "report/plots.h"
#include "report/saliency.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::report {
namespace {

constexpr int64_t kGalleryImages = 25;  // samples: a 5x5 grid
constexpr int64_t kFiltersShown = 16;

// A panel of a [H, W] map, or of a [C, H, W] image: RGB for 3 channels.
Panel panel_from(const torch::Tensor& image, std::string caption = "") {
  const torch::Tensor t = (image.dim() == 3 && image.size(0) == 1 ? image[0] : image).to(torch::kFloat).contiguous();
  Panel p;
  p.rgb = t.dim() == 3;
  p.height = static_cast<int>(t.size(-2));
  p.width = static_cast<int>(t.size(-1));
  p.pixels.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  p.caption = std::move(caption);
  return p;
}

std::vector<float> to_vector(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

std::vector<int64_t> to_labels(const torch::Tensor& t) {
  const torch::Tensor c = t.to(torch::kInt64).contiguous();
  return {c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel()};
}

void write_history_figures(const std::filesystem::path& dir, const std::vector<train::EpochRecord>& history) {
  Series train_acc{"train"}, valid_acc{"valid"}, train_loss{"train"}, valid_loss{"valid"};
  for (const auto& r : history) {
    for (Series* s : {&train_acc, &valid_acc, &train_loss, &valid_loss}) s->x.push_back(static_cast<double>(r.epoch));
    train_acc.y.push_back(r.train.acc);
    valid_acc.y.push_back(r.valid.acc);
    train_loss.y.push_back(r.train.loss);
    valid_loss.y.push_back(r.valid.loss);
  }
  plot_lines(dir / "accuracy.png", "Accuracy per epoch", "Epoch", "Acc.", {train_acc, valid_acc});
  plot_lines(dir / "loss.png", "Loss per epoch", "Epoch", "Loss", {train_loss, valid_loss});
}

void write_samples(const std::filesystem::path& dir, const data::Split& train) {
  std::vector<Panel> panels;
  for (int64_t i = 0; i < std::min<int64_t>(kGalleryImages, train.images.size(0)); ++i)
    panels.push_back(panel_from(train.images[i]));
  plot_image_grid(dir / "samples.png", "", panels, 5, 5, ColourMap::Bone, 600);
}

std::string mistake_caption(const data::Split& test, const eval::Predictions& p, const std::vector<std::string>& names,
                            int64_t i) {
  return strprintf("true: %s\npred: %s %.2f", names[test.labels[i].item<int64_t>()].c_str(),
                   names[p.predicted[i].item<int64_t>()].c_str(), p.probabilities[i].max().item<float>());
}

void write_mistakes(const std::filesystem::path& dir, const data::Split& test, const RunAnalysis& a) {
  std::vector<Panel> panels;
  for (int64_t k = 0; k < a.confident_mistakes.size(0); ++k) {
    const int64_t i = a.confident_mistakes[k].item<int64_t>();
    panels.push_back(panel_from(test.images[i], mistake_caption(test, a.predictions, a.class_names, i)));
  }
  plot_image_grid(dir / "mistakes.png", "The 25 most confidently wrong test images", panels, 5, 5, ColourMap::Bone,
                  1000);
}

// The same images as mistakes.png, in grey, under the saliency of the class they were taken for.
void write_saliency(const std::filesystem::path& dir, const data::Split& test, const RunAnalysis& a) {
  const torch::Tensor grey = data::convert_channels(test.images.index_select(0, a.confident_mistakes), 1);
  std::vector<Panel> panels;
  for (int64_t k = 0; k < a.confident_mistakes.size(0); ++k) {
    const int64_t i = a.confident_mistakes[k].item<int64_t>();
    panels.push_back(panel_from(saliency_overlay(grey[k][0], a.mistake_saliency[k]),
                                mistake_caption(test, a.predictions, a.class_names, i)));
  }
  plot_image_grid(dir / "saliency.png", "Saliency of the predicted class on the 25 most confidently wrong test images",
                  panels, 5, 5, ColourMap::Bone, 1000);
}

void write_reliability(const std::filesystem::path& dir, const Calibration& calibration) {
  plot_reliability(dir / "reliability.png", strprintf("Test set reliability: ECE %.4f", calibration.ece), calibration);
}

// The first convolution's filters (top row) and what each makes of one test image (bottom row).
bool write_filters(const std::filesystem::path& dir, models::ClassifierImpl& model, const data::Split& test,
                   const data::Normalization& norm, const std::vector<std::string>& names) {
  // The first layer that filters the input: a convolution, or the frozen patch whitening.
  torch::Tensor weight;
  std::function<torch::Tensor(const torch::Tensor&)> apply;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if (auto* conv = m->as<torch::nn::Conv2dImpl>()) {
      weight = conv->weight, apply = [conv](const torch::Tensor& x) { return conv->forward(x); };
      break;
    }
    if (auto* whitening = m->as<models::PatchWhiteningImpl>()) {
      weight = whitening->weight, apply = [whitening](const torch::Tensor& x) { return whitening->forward(x); };
      break;
    }
  }
  if (!weight.defined()) return false;
  torch::InferenceMode inference;
  const int64_t shown = std::min<int64_t>(weight.size(0), kFiltersShown);
  const torch::Tensor image = data::to_model_input(test.images.slice(0, 0, 1), norm);
  const torch::Tensor maps = apply(image.to(weight.device())).cpu()[0];
  weight = weight.detach().cpu();
  const std::string name = names[test.labels[0].item<int64_t>()];
  // Filters over colour input are shown on their first (red) channel.
  std::vector<Panel> panels = {panel_from(test.images[0], "input")};
  for (int64_t f = 0; f < shown; ++f) panels.push_back(panel_from(weight[f][0], "filter " + std::to_string(f + 1)));
  panels.push_back(panel_from(test.images[0], name));
  for (int64_t f = 0; f < shown; ++f) panels.push_back(panel_from(maps[f]));
  plot_image_grid(dir / "filters.png", "First convolution: filters and their output on a test image", panels, 2,
                  static_cast<int>(shown + 1), ColourMap::Diverging, 1100);
  return true;
}

void write_rotation_curve(const std::filesystem::path& dir, const RunAnalysis& a, const std::string& model_name) {
  Series series{model_name};
  for (const auto& point : a.rotation_curve) {
    series.x.push_back(point.degrees);
    series.y.push_back(point.accuracy);
  }
  plot_lines(dir / "rotation.png", "Test accuracy with every image rotated by a fixed angle", "Rotation (degrees)",
             "Accuracy", {series});
}

void write_confusion(const std::filesystem::path& dir, const ClassificationReport& classes,
                     const std::vector<std::string>& names) {
  const int64_t n = classes.confusion.size(0);
  std::vector<std::vector<int64_t>> counts(n);
  const auto c = classes.confusion.accessor<int64_t, 2>();
  for (int64_t t = 0; t < n; ++t)
    for (int64_t q = 0; q < n; ++q) counts[t].push_back(c[t][q]);
  plot_confusion(dir / "confusion.png", counts, names, "Test confusion matrix");
}

// A 2-D map of the hidden representation of the first test images, coloured by class.
void write_map(const std::filesystem::path& file, const char* method, const torch::Tensor& points,
               const data::Split& test, const std::vector<std::string>& names) {
  const int64_t n = points.size(0);
  plot_scatter(file, strprintf("%s of the hidden representation (%lld test images)", method, static_cast<long long>(n)),
               to_vector(points.select(1, 0)), to_vector(points.select(1, 1)), to_labels(test.labels.slice(0, 0, n)),
               names);
}

}  // namespace

std::vector<std::string> write_figures(const std::filesystem::path& run_dir, const RunAnalysis& analysis,
                                       models::ClassifierImpl& model, const data::Dataset& data,
                                       const data::Normalization& norm, const std::vector<train::EpochRecord>& history,
                                       const std::string& model_name) {
  const auto dir = run_dir / "figures";
  ensure_writable_dir(dir);
  write_history_figures(dir, history);
  write_rotation_curve(dir, analysis, model_name);
  const std::vector<std::string>& names = analysis.class_names;
  write_samples(dir, data.train);
  write_confusion(dir, analysis.classes, names);
  write_reliability(dir, analysis.calibration);
  write_mistakes(dir, data.test, analysis);
  write_saliency(dir, data.test, analysis);
  const bool has_filters = write_filters(dir, model, data.test, norm, names);
  write_map(dir / "pca.png", "PCA", analysis.pca, data.test, names);
  if (analysis.tsne.defined()) write_map(dir / "tsne.png", "t-SNE", analysis.tsne, data.test, names);
  std::vector<std::string> figures;
  for (const std::string name : {"samples", "accuracy", "loss", "confusion", "reliability", "mistakes", "saliency",
                                 "filters", "pca", "tsne", "rotation"}) {
    if (std::filesystem::exists(dir / (name + ".png")) && (has_filters || name != "filters")) {
      figures.push_back("figures/" + name + ".png");
    }
  }
  return figures;
}

}  // namespace convkit::report
