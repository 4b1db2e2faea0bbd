#include "report/report.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "data/transforms.h"
#include "report/analysis.h"
#include "report/plots.h"
#include "train/checkpoint.h"
#include "train/inference.h"
#include "train/trainer.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::report {
namespace {

std::vector<std::string> class_names() { return {data::kClassNames.begin(), data::kClassNames.end()}; }

Panel panel_from(const torch::Tensor& image, std::string caption = "") {
  const torch::Tensor t = image.to(torch::kFloat).contiguous();
  Panel p;
  p.height = static_cast<int>(t.size(0));
  p.width = static_cast<int>(t.size(1));
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

nlohmann::json scores_json(const ClassScores& s) {
  return {{"precision", s.precision}, {"recall", s.recall}, {"f1-score", s.f1}, {"support", s.support}};
}

void write_history_figures(const std::filesystem::path& dir, const nlohmann::json& history) {
  Series train_acc{"train"}, valid_acc{"valid"}, train_loss{"train"}, valid_loss{"valid"};
  for (const auto& row : history) {
    const double e = row.at("epoch").get<double>();
    for (Series* s : {&train_acc, &valid_acc, &train_loss, &valid_loss}) s->x.push_back(e);
    train_acc.y.push_back(row.at("train_acc").get<double>());
    valid_acc.y.push_back(row.at("valid_acc").get<double>());
    train_loss.y.push_back(row.at("train_loss").get<double>());
    valid_loss.y.push_back(row.at("valid_loss").get<double>());
  }
  plot_lines(dir / "accuracy.png", "Accuracy per epoch", "Epoch", "Acc.", {train_acc, valid_acc});
  plot_lines(dir / "loss.png", "Loss per epoch", "Epoch", "Loss", {train_loss, valid_loss});
}

void write_samples(const std::filesystem::path& dir, const data::Split& train) {
  std::vector<Panel> panels;
  for (int64_t i = 0; i < std::min<int64_t>(25, train.images.size(0)); ++i) panels.push_back(panel_from(train.images[i]));
  plot_image_grid(dir / "samples.png", "", panels, 5, 5, ColourMap::Bone, 600);
}

void write_mistakes(const std::filesystem::path& dir, const data::Split& test, const Predictions& p) {
  const torch::Tensor confidence = std::get<0>(p.probabilities.max(1));
  const torch::Tensor wrong = p.predicted.ne(test.labels).nonzero().squeeze(1);
  const torch::Tensor order = confidence.index_select(0, wrong).argsort(0, /*descending=*/true);
  std::vector<Panel> panels;
  for (int64_t k = 0; k < std::min<int64_t>(25, order.size(0)); ++k) {
    const int64_t i = wrong[order[k].item<int64_t>()].item<int64_t>();
    panels.push_back(panel_from(test.images[i], strprintf("true: %s\npred: %s %.2f", data::kClassNames[test.labels[i].item<int64_t>()],
                                                          data::kClassNames[p.predicted[i].item<int64_t>()],
                                                          confidence[i].item<float>())));
  }
  plot_image_grid(dir / "mistakes.png", "The 25 most confidently wrong test images", panels,
                  5, 5, ColourMap::Bone, 1000);
}

// The first convolution's filters (top row) and what each makes of one test image (bottom row).
bool write_filters(const std::filesystem::path& dir, models::ClassifierImpl& model, const data::Split& test,
                   data::Normalization norm) {
  torch::nn::Conv2dImpl* conv = nullptr;
  for (const auto& m : model.modules(/*include_self=*/false)) {
    if ((conv = m->as<torch::nn::Conv2dImpl>())) break;
  }
  if (!conv) return false;
  torch::InferenceMode inference;
  const torch::Tensor weight = conv->weight.detach().cpu();
  const int64_t shown = std::min<int64_t>(weight.size(0), 16);
  const torch::Tensor image = data::to_model_input(test.images.slice(0, 0, 1), norm);
  const torch::Tensor maps = conv->forward(image.to(conv->weight.device())).cpu()[0];
  const std::string name = data::kClassNames[test.labels[0].item<int64_t>()];
  std::vector<Panel> panels = {panel_from(image[0][0], "input")};
  for (int64_t f = 0; f < shown; ++f) panels.push_back(panel_from(weight[f][0], "filter " + std::to_string(f + 1)));
  panels.push_back(panel_from(image[0][0], name));
  for (int64_t f = 0; f < shown; ++f) panels.push_back(panel_from(maps[f]));
  plot_image_grid(dir / "filters.png", "First convolution: filters and their output on a test image", panels, 2,
                  static_cast<int>(shown + 1), ColourMap::Diverging, 1100);
  return true;
}

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (bytes[i] << 16) | (i + 1 < bytes.size() ? bytes[i + 1] << 8 : 0) |
                       (i + 2 < bytes.size() ? bytes[i + 2] : 0);
    out += table[(n >> 18) & 63];
    out += table[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? table[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? table[n & 63] : '=';
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string img_tag(const std::filesystem::path& png, const std::string& alt) {
  return "<img alt=\"" + html_escape(alt) + "\" src=\"data:image/png;base64," + base64(read_file_bytes(png)) + "\">";
}

const char* kStyle = R"(<style>
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ddd;padding:.25em .6em;text-align:right}
th{background:#f4f6f8}td:first-child,th:first-child{text-align:left}
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{background:#f4f6f8;border-radius:8px;padding:.8em 1.2em}
.card b{display:block;font-size:1.6em}img{max-width:100%;height:auto;border:1px solid #eee;margin:.4em 0}
.grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}@media(max-width:800px){.grid{grid-template-columns:1fr}}
</style>)";

}  // namespace

std::vector<double> rotation_curve_angles() {
  std::vector<double> angles;
  for (int a = 0; a <= 180; a += 15) angles.push_back(a);
  return angles;
}

void write_figures(const std::filesystem::path& run_dir, models::ClassifierImpl& model, const data::Mnist& mnist,
                   data::Normalization norm, const torch::Device& device, const nlohmann::json& history,
                   nlohmann::json& metrics) {
  const auto dir = run_dir / "figures";
  ensure_writable_dir(dir);
  write_history_figures(dir, history);
  const Predictions p = predict_all(model, mnist.test.images, norm, device);
const ClassificationReport cr = classification_report(mnist.test.labels, p.predicted, data::kNumClasses);
  nlohmann::json per_class;
  for (int64_t k = 0; k < data::kNumClasses; ++k) per_class[data::kClassNames[k]] = scores_json(cr.per_class[k]);
  per_class["accuracy"] = cr.accuracy;
  per_class["macro avg"] = scores_json(cr.macro);
  per_class["weighted avg"] = scores_json(cr.weighted);
  std::vector<std::vector<int64_t>> confusion(data::kNumClasses);
  for (int64_t t = 0; t < data::kNumClasses; ++t)
    for (int64_t q = 0; q < data::kNumClasses; ++q) confusion[t].push_back(cr.confusion[t][q].item<int64_t>());
  metrics["confusion_matrix"] = confusion;
  metrics["per_class"] = per_class;

  const int64_t n_rotation = std::min<int64_t>(kRotationImages, mnist.test.images.size(0));
  const data::Split rotation_subset{mnist.test.images.slice(0, 0, n_rotation), mnist.test.labels.slice(0, 0, n_rotation)};
  const auto curve = accuracy_vs_rotation(model, rotation_subset, norm, rotation_curve_angles(), device);
  nlohmann::json curve_json = nlohmann::json::array();
  Series series{metrics.value("model", std::string("model"))};
  for (const auto& point : curve) {
    curve_json.push_back({{"degrees", point.degrees}, {"accuracy", point.accuracy}});
    series.x.push_back(point.degrees);
    series.y.push_back(point.accuracy);
  }
  metrics["rotation_curve"] = curve_json;
plot_lines(dir / "rotation.png", "Test accuracy with every image rotated by a fixed angle", "Rotation (degrees)",
             "Accuracy", {series});

write_samples(dir, mnist.train);
  plot_confusion(dir / "confusion.png", confusion, class_names(), "Test confusion matrix");
  write_mistakes(dir, mnist.test, p);
  const bool has_filters = write_filters(dir, model, mnist.test, norm);
const int64_t n_pca = std::min<int64_t>(kPcaImages, p.hidden.size(0));
  const torch::Tensor pca = pca_2d(p.hidden.slice(0, 0, n_pca));
  plot_scatter(dir / "pca.png", strprintf("PCA of the hidden representation (%lld test images)", (long long)n_pca),
               to_vector(pca.select(1, 0)), to_vector(pca.select(1, 1)), to_labels(mnist.test.labels.slice(0, 0, n_pca)),
               class_names());
const int64_t n_tsne = std::min<int64_t>(kTsneImages, p.hidden.size(0));
  if (n_tsne > 100) {
    const torch::Tensor tsne = tsne_2d(p.hidden.slice(0, 0, n_tsne));
    plot_scatter(dir / "tsne.png", strprintf("t-SNE of the hidden representation (%lld test images)", (long long)n_tsne),
                 to_vector(tsne.select(1, 0)), to_vector(tsne.select(1, 1)),
                 to_labels(mnist.test.labels.slice(0, 0, n_tsne)), class_names());
  }
nlohmann::json figures = nlohmann::json::array();
  for (const char* f : {"samples", "accuracy", "loss", "confusion", "mistakes", "filters", "pca", "tsne", "rotation"}) {
    if (std::filesystem::exists(dir / (std::string(f) + ".png")) && (has_filters || std::string(f) != "filters")) {
      figures.push_back(std::string("figures/") + f + ".png");
    }
  }
  metrics["figures"] = figures;
  metrics["pca_images"] = n_pca;
  metrics["tsne_images"] = n_tsne;
  metrics["rotation_images"] = n_rotation;
}

void write_html_report(const std::filesystem::path& run_dir, const nlohmann::json& metrics,
                       const nlohmann::json& history) {
  std::ostringstream h;
  const std::string model = metrics.value("model", std::string("?"));
  h << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    << "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    << "<title>convkit run: " << html_escape(model) << "</title>" << kStyle << "</head><body>";
  h << "<h1>convkit run: " << html_escape(model) << "</h1>";
  h << "<div class=\"cards\">"
    << strprintf("<div class=\"card\">Test accuracy<b>%.2f%%</b>loss %.3f</div>", 100 * metrics.value("test_acc", 0.0),
                 metrics.value("test_loss", 0.0))
    << strprintf("<div class=\"card\">Rotated test accuracy (&plusmn;%g&deg;)<b>%.2f%%</b>loss %.3f</div>",
                 metrics.value("rotation_degrees", 0.0), 100 * metrics.value("rotated_test_acc", 0.0),
                 metrics.value("rotated_test_loss", 0.0))
    << strprintf("<div class=\"card\">Best epoch<b>%lld</b>of %lld</div>", (long long)metrics.value("best_epoch", 0),
                 (long long)metrics.value("epochs", 0))
    << "</div>";

  h << "<h2>Configuration</h2><table>";
  for (const char* key : {"model", "parameters", "epochs", "batch_size", "lr", "seed", "threads", "device",
                          "data_dir", "limit", "rotation_degrees", "total_seconds"}) {
    if (!metrics.contains(key)) continue;
    const auto& v = metrics[key];
    h << "<tr><td>" << key << "</td><td>" << html_escape(v.is_string() ? v.get<std::string>() : v.dump()) << "</td></tr>";
  }
  if (metrics.contains("normalization")) {
    h << strprintf("<tr><td>normalisation</td><td>mean %.4f, std %.4f</td></tr>",
                   metrics["normalization"].value("mean", 0.0), metrics["normalization"].value("std", 0.0));
  }
  h << "</table>";

  h << "<h2>Training</h2><table><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>valid loss</th>"
    << "<th>valid acc</th><th>seconds</th></tr>";
  for (const auto& r : history) {
    h << strprintf("<tr><td>%lld</td><td>%.3f</td><td>%.2f%%</td><td>%.3f</td><td>%.2f%%</td><td>%.2f</td></tr>",
                   (long long)r.value("epoch", 0), r.value("train_loss", 0.0), 100 * r.value("train_acc", 0.0),
                   r.value("valid_loss", 0.0), 100 * r.value("valid_acc", 0.0), r.value("seconds", 0.0));
  }
  h << "</table>";

  if (metrics.contains("per_class")) {
    const auto& pc = metrics["per_class"];
    h << "<h2>Classification report (test set)</h2><table><tr><th></th><th>precision</th><th>recall</th>"
      << "<th>f1-score</th><th>support</th></tr>";
    auto row = [&](const std::string& name, const nlohmann::json& s) {
      h << strprintf("<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%lld</td></tr>", html_escape(name).c_str(),
                     s.value("precision", 0.0), s.value("recall", 0.0), s.value("f1-score", 0.0),
                     (long long)s.value("support", 0));
    };
    for (const char* c : data::kClassNames) row(c, pc[c]);
    h << strprintf("<tr><td>accuracy</td><td></td><td></td><td>%.4f</td><td>%lld</td></tr>", pc.value("accuracy", 0.0),
                   (long long)pc["macro avg"].value("support", 0));
    row("macro avg", pc["macro avg"]);
    row("weighted avg", pc["weighted avg"]);
    h << "</table>";
  }

  struct Fig {
    const char* file;
    const char* heading;
  };
  const Fig figs[] = {{"accuracy", "Accuracy"},           {"loss", "Loss"},
                      {"samples", "Training samples"},    {"confusion", "Confusion matrix"},
                      {"mistakes", "Confident mistakes"}, {"filters", "Learned filters"},
                      {"pca", "PCA"},                     {"tsne", "t-SNE"},
                      {"rotation", "Accuracy under rotation"}};
  h << "<h2>Figures</h2><div class=\"grid\">";
  for (const auto& f : figs) {
    const auto png = run_dir / "figures" / (std::string(f.file) + ".png");
    if (std::filesystem::exists(png)) h << "<div><h3>" << f.heading << "</h3>" << img_tag(png, f.heading) << "</div>";
  }
  h << "</div><p>Written by convkit.</p></body></html>\n";
  write_file_atomically(run_dir / "report.html", h.str());
}

namespace {

nlohmann::json read_json_file(const std::filesystem::path& file) {
  const auto raw = read_file_bytes(file);
  try {
    return nlohmann::json::parse(raw.begin(), raw.end());
  } catch (const nlohmann::json::exception& e) {
    throw file_error(file.string(), std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

void regenerate_report(const std::filesystem::path& run_dir, const torch::Device& device, std::ostream& out) {
  const train::TrainOptions settings = train::read_run_options(run_dir);
  nlohmann::json metrics = read_json_file(run_dir / "metrics.json");
  const nlohmann::json history = read_json_file(run_dir / "history.json");
  auto loaded = train::load_model(run_dir / "model.pt", "", settings.data_dir);
  loaded.model->to(device);
  const data::Mnist mnist = data::load_mnist(settings.data_dir, settings.limit);
  write_figures(run_dir, *loaded.model, mnist, {loaded.info.mean, loaded.info.std}, device, history, metrics);
  write_file_atomically(run_dir / "metrics.json", metrics.dump(2) + "\n");
  write_html_report(run_dir, metrics, history);
  out << "Report written to " << (run_dir / "report.html").string() << " (figures in "
      << (run_dir / "figures").string() << "/)\n";
}

void compare_runs(const std::vector<std::filesystem::path>& runs, const std::filesystem::path& out_dir,
                  std::ostream& out) {
  ensure_writable_dir(out_dir);
  std::vector<Series> series;
  std::ostringstream rows;
  for (const auto& run : runs) {
    const auto metrics = read_json_file(run / "metrics.json");
    if (!metrics.contains("rotation_curve")) {
      throw file_error((run / "metrics.json").string(), "has no rotation_curve; run `convkit report " + run.string() + "` first");
    }
    Series s{run.filename().string() + " (" + metrics.value("model", std::string("?")) + ")"};
    for (const auto& point : metrics["rotation_curve"]) {
      s.x.push_back(point.at("degrees").get<double>());
      s.y.push_back(point.at("accuracy").get<double>());
    }
    rows << strprintf("<tr><td>%s</td><td>%s</td><td>%.2f%%</td><td>%.2f%%</td>", html_escape(run.string()).c_str(),
                      html_escape(metrics.value("model", std::string("?"))).c_str(), 100 * metrics.value("test_acc", 0.0),
                      100 * metrics.value("rotated_test_acc", 0.0));
    for (double acc : s.y) rows << strprintf("<td>%.1f</td>", 100 * acc);
    rows << "</tr>";
    series.push_back(std::move(s));
  }
  plot_lines(out_dir / "rotation.png", "Test accuracy against rotation angle", "Rotation (degrees)", "Accuracy", series);
  std::ostringstream h;
  h << "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>convkit comparison</title>" << kStyle
    << "</head><body><h1>Comparison under rotation</h1><table><tr><th>run</th><th>model</th><th>test acc</th>"
    << "<th>rotated acc</th>";
  for (double a : rotation_curve_angles()) h << strprintf("<th>%g&deg;</th>", a);
  h << "</tr>" << rows.str() << "</table>" << img_tag(out_dir / "rotation.png", "accuracy against rotation")
    << "</body></html>\n";
  write_file_atomically(out_dir / "compare.html", h.str());
  out << "Comparison written to " << (out_dir / "compare.html").string() << " and "
      << (out_dir / "rotation.png").string() << "\n";
}

}  // namespace convkit::report
