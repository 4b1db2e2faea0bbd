#include "report/run_report.h"

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "checkpoint/model_info.h"
#include "eval/predict.h"
#include "report/figures.h"
#include "report/html.h"
#include "report/plots.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::report {

namespace {

// Enough pairs to show what a network of many classes mixes up.
constexpr size_t kConfusedPairsShown = 20;

std::string summary_cards(const nlohmann::json& metrics) {
  return "<div class=\"cards\">" +
         strprintf("<div class=\"card\">Test accuracy<b>%.2f%%</b>loss %.3f</div>",
                   100 * metrics.value("test_acc", 0.0), metrics.value("test_loss", 0.0)) +
         strprintf("<div class=\"card\">Rotated test accuracy (&plusmn;%g&deg;)<b>%.2f%%</b>loss %.3f</div>",
                   metrics.value("rotation_degrees", 0.0), 100 * metrics.value("rotated_test_acc", 0.0),
                   metrics.value("rotated_test_loss", 0.0)) +
         strprintf("<div class=\"card\">Best epoch<b>%lld</b>of %lld</div>",
                   static_cast<long long>(metrics.value("best_epoch", 0)),
                   static_cast<long long>(metrics.value("epochs", 0))) +
         "</div>";
}

std::string configuration_table(const nlohmann::json& metrics) {
  std::string h = "<h2>Configuration</h2><table>";
  for (const char* key : {"model", "parameters", "epochs", "batch_size", "lr", "seed", "world_size", "threads",
                          "device", "data_dir", "limit", "rotation_degrees", "total_seconds"}) {
    if (!metrics.contains(key)) continue;
    const auto& v = metrics[key];
    h += std::string("<tr><td>") + key + "</td><td>" + html_escape(v.is_string() ? v.get<std::string>() : v.dump()) +
         "</td></tr>";
  }
  if (metrics.contains("distributed")) {
    const auto& d = metrics["distributed"];
    h += strprintf(
        "<tr><td>data parallel</td><td>%lld processes (%s), gradient allreduce %.0f &micro;s a call</td></tr>",
        static_cast<long long>(d.value("world_size", 0)), html_escape(d.value("backend", "")).c_str(),
        d.value("allreduce_seconds_per_call", 0.0) * 1e6);
  }
  if (metrics.contains("input")) {
    const auto& in = metrics["input"];
    h += strprintf("<tr><td>images</td><td>%lld channel(s), %lld x %lld</td></tr>",
                   static_cast<long long>(in.value("channels", 0)), static_cast<long long>(in.value("height", 0)),
                   static_cast<long long>(in.value("width", 0)));
  }
  if (metrics.contains("normalization")) {
    const data::Normalization norm = checkpoint::normalization_from_json(metrics["normalization"], "metrics.json");
    h += "<tr><td>normalisation</td><td>" + norm.str() + "</td></tr>";
  }
  return h + "</table>";
}

// The off-diagonal cells of the confusion matrix with the most images, largest first.
std::string confused_pairs_table(const nlohmann::json& classes, const nlohmann::json& confusion) {
  struct Pair {
    int64_t count;
    size_t truth, predicted;
  };
  std::vector<Pair> pairs;
  for (size_t t = 0; t < confusion.size(); ++t)
    for (size_t p = 0; p < confusion[t].size(); ++p)
      if (t != p && confusion[t][p].get<int64_t>() > 0) pairs.push_back({confusion[t][p].get<int64_t>(), t, p});
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.count > b.count; });
  pairs.resize(std::min<size_t>(pairs.size(), kConfusedPairsShown));
  std::string h =
      "<h2>Most confused classes</h2><table><tr><th>true class</th><th>predicted as</th><th>test "
      "images</th></tr>";
  for (const Pair& p : pairs)
    h += "<tr><td>" + html_escape(classes[p.truth].get<std::string>()) + "</td><td>" +
         html_escape(classes[p.predicted].get<std::string>()) + "</td><td>" + std::to_string(p.count) + "</td></tr>";
  return h + "</table>";
}

std::string training_table(const std::vector<train::EpochRecord>& history) {
  std::string h =
      "<h2>Training</h2><table><tr><th>epoch</th><th>train loss</th><th>train acc</th><th>valid loss</th>"
      "<th>valid acc</th><th>seconds</th></tr>";
  for (const auto& r : history) {
    h += strprintf("<tr><td>%lld</td><td>%.3f</td><td>%.2f%%</td><td>%.3f</td><td>%.2f%%</td><td>%.2f</td></tr>",
                   static_cast<long long>(r.epoch), r.train.loss, 100 * r.train.acc, r.valid.loss, 100 * r.valid.acc,
                   r.seconds);
  }
  return h + "</table>";
}

// metrics.json's per_class, as scikit-learn's classification_report prints it.
std::string classification_table(const nlohmann::json& classes, const nlohmann::json& per_class) {
  std::string h =
      "<h2>Classification report (test set)</h2><table><tr><th></th><th>precision</th><th>recall</th>"
      "<th>f1-score</th><th>support</th></tr>";
  auto row = [&](const std::string& name, const nlohmann::json& s) {
    h += strprintf("<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td><td>%lld</td></tr>",
                   html_escape(name).c_str(), s.value("precision", 0.0), s.value("recall", 0.0),
                   s.value("f1-score", 0.0), static_cast<long long>(s.value("support", 0)));
  };
  for (const auto& c : classes)
    row(c.get<std::string>(), per_class.value(c.get<std::string>(), nlohmann::json::object()));
  h += strprintf("<tr><td>accuracy</td><td></td><td></td><td>%.4f</td><td>%lld</td></tr>",
                 per_class.value("accuracy", 0.0), static_cast<long long>(per_class["macro avg"].value("support", 0)));
  row("macro avg", per_class["macro avg"]);
  row("weighted avg", per_class["weighted avg"]);
  return h + "</table>";
}

// metrics.json's calibration: the ECE, the reliability diagram and its non-empty bins.
std::string calibration_section(const std::filesystem::path& run_dir, const nlohmann::json& calibration) {
  const nlohmann::json bins = calibration.value("bins", nlohmann::json::array());
  std::string h = strprintf(
      "<h2>Calibration (test set)</h2><p>Expected calibration error: <b>%.4f</b>, the mean gap between accuracy and "
      "confidence (the highest probability) over %zu bins of confidence, weighted by their images.</p>"
      "<div class=\"grid\"><div>",
      calibration.value("ece", 0.0), bins.size());
  const auto png = run_dir / "figures" / "reliability.png";
  if (std::filesystem::exists(png)) h += embedded_png(png, "Reliability diagram");
  h += "</div><div><table><tr><th>confidence</th><th>images</th><th>accuracy</th><th>mean confidence</th></tr>";
  for (const auto& bin : bins) {
    if (bin.value("count", int64_t{0}) == 0) continue;
    h += strprintf("<tr><td>%.3f&ndash;%.3f</td><td>%lld</td><td>%.4f</td><td>%.4f</td></tr>", bin.value("lower", 0.0),
                   bin.value("upper", 0.0), static_cast<long long>(bin.value("count", int64_t{0})),
                   bin.value("accuracy", 0.0), bin.value("confidence", 0.0));
  }
  return h + "</table></div></div>";
}

// One row per variant: its test-set calibration, and its reliability diagram in figures/.
nlohmann::json write_calibration_variants(const std::filesystem::path& run_dir, const RunAnalysis& analysis,
                                          const std::vector<CalibrationVariant>& variants, const data::Split& test,
                                          const data::Normalization& norm, const torch::Device& device) {
  nlohmann::json rows = nlohmann::json::array();
  for (size_t i = 0; i < variants.size(); ++i) {
    const CalibrationVariant& v = variants[i];
    const Calibration c =
        v.model == nullptr
            ? analysis.calibration
            : calibration(eval::predict_all(*v.model, test.images, norm, device).probabilities, test.labels);
    double correct = 0, confidence = 0;
    for (const CalibrationBin& bin : c.bins)
      correct += bin.accuracy * bin.count, confidence += bin.confidence * bin.count;
    const std::string figure = "figures/reliability-" + std::to_string(i + 1) + ".png";
    plot_reliability(run_dir / figure, strprintf("%s: ECE %.4f", v.name.c_str(), c.ece), c);
    rows.push_back({{"name", v.name},
                    {"ece", c.ece},
                    {"accuracy", c.samples ? correct / c.samples : 0.0},
                    {"mean_confidence", c.samples ? confidence / c.samples : 0.0},
                    {"figure", figure}});
  }
  return rows;
}

// metrics.json's calibration_variants: the table and the diagrams side by side.
std::string calibration_variants_section(const std::filesystem::path& run_dir, const nlohmann::json& rows) {
  std::string h =
      "<h2>Calibration before and after</h2><p>The same test set through the run's network without and with its "
      "weight average and test-time augmentation.</p><table><tr><th></th><th>accuracy</th><th>mean "
      "confidence</th><th>ECE</th></tr>";
  for (const auto& row : rows) {
    h += strprintf("<tr><td>%s</td><td>%.4f</td><td>%.4f</td><td>%.4f</td></tr>",
                   html_escape(row.value("name", std::string())).c_str(), row.value("accuracy", 0.0),
                   row.value("mean_confidence", 0.0), row.value("ece", 0.0));
  }
  h += "</table><div class=\"grid\">";
  for (const auto& row : rows) {
    const auto png = run_dir / row.value("figure", std::string());
    if (std::filesystem::exists(png))
      h += "<div><h3>" + html_escape(row.value("name", std::string())) + "</h3>" + embedded_png(png, "Reliability") +
           "</div>";
  }
  return h + "</div>";
}

std::string figure_grid(const std::filesystem::path& run_dir) {
  struct Figure {
    const char* file;
    const char* heading;
  };
  const Figure figures[] = {{"accuracy", "Accuracy"},
                            {"loss", "Loss"},
                            {"samples", "Training samples"},
                            {"confusion", "Confusion matrix"},
                            {"mistakes", "Confident mistakes"},
                            {"saliency", "Saliency of the confident mistakes"},
                            {"filters", "Learned filters"},
                            {"pca", "PCA"},
                            {"tsne", "t-SNE"},
                            {"rotation", "Accuracy under rotation"}};
  std::string h = "<h2>Figures</h2><div class=\"grid\">";
  for (const auto& f : figures) {
    const auto png = run_dir / "figures" / (std::string(f.file) + ".png");
    if (std::filesystem::exists(png))
      h += std::string("<div><h3>") + f.heading + "</h3>" + embedded_png(png, f.heading) + "</div>";
  }
  return h + "</div>";
}

}  // namespace

void write_html_report(const std::filesystem::path& run_dir, const nlohmann::json& metrics,
                       const std::vector<train::EpochRecord>& history) {
  const std::string model = metrics.value("model", std::string("?"));
  std::string h = html_page_start("convkit run: " + model) + "<h1>convkit run: " + html_escape(model) + "</h1>";
  h += summary_cards(metrics) + configuration_table(metrics) + training_table(history);
  if (metrics.contains("per_class") && metrics.contains("classes"))
    h += classification_table(metrics["classes"], metrics["per_class"]);
  if (metrics.contains("confusion_matrix") && metrics.contains("classes"))
    h += confused_pairs_table(metrics["classes"], metrics["confusion_matrix"]);
  if (metrics.contains("calibration")) h += calibration_section(run_dir, metrics["calibration"]);
  if (metrics.contains("calibration_variants"))
    h += calibration_variants_section(run_dir, metrics["calibration_variants"]);
  h += figure_grid(run_dir) + "<p>Written by convkit.</p>" + kHtmlPageEnd;
  write_file_atomically(run_dir / "report.html", h);
}

nlohmann::json write_run_report(const std::filesystem::path& run_dir, models::ClassifierImpl& model,
                                const data::Dataset& data, const data::Normalization& norm, const torch::Device& device,
                                const std::vector<train::EpochRecord>& history, nlohmann::json metrics,
                                const std::vector<CalibrationVariant>& variants) {
  const RunAnalysis analysis = analyse_run(model, data.test, data.classes, norm, device);
  metrics.update(analysis_metrics(analysis));
  metrics["figures"] =
      write_figures(run_dir, analysis, model, data, norm, history, metrics.value("model", std::string("model")));
  if (!variants.empty()) {
    metrics["calibration_variants"] = write_calibration_variants(run_dir, analysis, variants, data.test, norm, device);
    for (const auto& row : metrics["calibration_variants"]) metrics["figures"].push_back(row["figure"]);
  }
  write_html_report(run_dir, metrics, history);
  return metrics;
}

}  // namespace convkit::report
