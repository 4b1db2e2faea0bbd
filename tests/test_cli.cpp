// The convkit binary as a user runs it: real data on a --limit subset, bad flags, bad files.
#include <gtest/gtest.h>
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#include <torch/torch.h>

#include <zlib.h>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>

#include "checkpoint/model_info.h"
#include "checkpoint/state_dict.h"
#include "cli_util.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image.h"
#include "eval/load_model.h"
#include "eval/predict.h"
#include "models/registry.h"
#include "run/lr_find.h"
#include "test_util.h"
#include "util/files.h"

using namespace convkit;
using namespace convkit::testing;

TEST(Cli, TrainEndToEndOnRealSubset) {
  TempDir dir;
  const auto r = run_convkit("train --limit 3000 --epochs 2 --threads 2 --out " + (dir / "run").string());
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Normalisation: mean 0.28"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Number of training examples: 2700\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("Number of validation examples: 300\n"), std::string::npos);
  EXPECT_NE(r.out.find("Number of testing examples: 3000\n"), std::string::npos);
  // The tutorial's exact epoch lines, and no progress bar when piped.
  const std::regex epoch_lines(
      "Epoch: 0([12]) \\| Epoch Time: \\d+m \\d+s\n"
      "\tTrain Loss: \\d\\.\\d{3} \\| Train Acc: \\d{1,3}\\.\\d{2}%\n"
      "\t Val\\. Loss: \\d\\.\\d{3} \\|  Val\\. Acc: \\d{1,3}\\.\\d{2}%\n");
  EXPECT_EQ(std::distance(std::sregex_iterator(r.out.begin(), r.out.end(), epoch_lines), std::sregex_iterator()), 2)
      << r.out;
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nTest Loss: \\d\\.\\d{3} \\| Test Acc: \\d+\\.\\d{2}%\n")));
  EXPECT_TRUE(
      std::regex_search(r.out, std::regex("\nRotated Test Loss: \\d\\.\\d{3} \\| Rotated Test Acc: \\d+\\.\\d{2}%\n")));
  EXPECT_EQ(r.out.find('\r'), std::string::npos);

  const auto history = read_json(dir / "run" / "history.json");
  ASSERT_EQ(history.size(), 2u);
  for (const char* key : {"epoch", "train_loss", "train_acc", "valid_loss", "valid_acc", "train_seconds", "seconds"}) {
    EXPECT_TRUE(history[1].contains(key)) << key;
  }
  EXPECT_LT(history[1]["train_loss"].get<double>(), history[0]["train_loss"].get<double>());

  const auto metrics = read_json(dir / "run" / "metrics.json");
  for (const char* key : {"model", "epochs", "best_epoch", "test_loss", "test_acc", "rotated_test_loss",
                          "rotated_test_acc", "rotation_degrees", "seed", "threads"}) {
    EXPECT_TRUE(metrics.contains(key)) << key;
  }
  EXPECT_EQ(metrics["model"], "lenet");
  EXPECT_EQ(metrics["threads"], 2);
  EXPECT_GT(metrics["test_acc"].get<double>(), 0.6);  // chance is 0.1
  // Rotation makes the task harder for a network trained without it.
  EXPECT_LT(metrics["rotated_test_acc"].get<double>(), metrics["test_acc"].get<double>());

  // The best checkpoint loads back into the architecture named beside it.
  const auto info = checkpoint::read_checkpoint_info(dir / "run" / "model.pt");
  ASSERT_TRUE(info.has_value());
  auto model = models::make_model(info->model);
  checkpoint::load_state_dict(*model, checkpoint::read_state_dict(dir / "run" / "model.pt"), "model.pt");
  EXPECT_FALSE(std::filesystem::exists(dir / "run" / "model.pt.tmp"));
}

TEST(Cli, SameSeedSameThreadsSameNumbers) {
  TempDir dir;
  for (const char* run : {"a", "b"}) {
    const auto r = run_convkit("train --model mlp --limit 1000 --epochs 1 --threads 2 --out " + (dir / run).string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  const auto a = read_json(dir / "a" / "metrics.json"), b = read_json(dir / "b" / "metrics.json");
  EXPECT_EQ(a["test_loss"], b["test_loss"]);
  EXPECT_EQ(a["rotated_test_acc"], b["rotated_test_acc"]);
  EXPECT_EQ(read_file_bytes(dir / "a" / "model.pt"), read_file_bytes(dir / "b" / "model.pt"));
}

TEST(Cli, BadFlagsFailWithOneLine) {
  expect_one_line_error(run_convkit("train --epochs 0"), "--epochs");
  expect_one_line_error(run_convkit("train --epochs abc"), "--epochs");
  expect_one_line_error(run_convkit("train --batch-size 0"), "--batch-size");
  expect_one_line_error(run_convkit("train --lr -1"), "--lr");
  expect_one_line_error(run_convkit("train --lr nan"), "--lr");
  expect_one_line_error(run_convkit("train --model resnet"), "--model");
  expect_one_line_error(run_convkit("train --device tpu"), "--device");
  expect_one_line_error(run_convkit("train --rotation -5"), "--rotation");
  expect_one_line_error(run_convkit("train --bogus 1"), "--bogus");
  expect_one_line_error(run_convkit("train --nproc 2 --dist-wait spin"), "--dist-wait");
  expect_one_line_error(run_convkit("train --nproc 0"), "--nproc");
  expect_one_line_error(run_convkit("train --nproc 2 --dist-timeout 0"), "--dist-timeout");
  EXPECT_NE(run_convkit("").exit_code, 0);
  EXPECT_NE(run_convkit("fly").exit_code, 0);
}

TEST(Cli, HelpExitsZero) {
  const auto r = run_convkit("train --help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--batch-size"), std::string::npos);
  EXPECT_NE(r.out.find("/usr/share/datasets/fashion-mnist"), std::string::npos);
}

TEST(Cli, BadDataFailsBeforeTrainingAndNamesTheFile) {
  TempDir dir;
  expect_one_line_error(run_convkit("train --data " + (dir / "absent").string() + " --out " + (dir / "o").string()),
                        "absent: data directory does not exist");

  convkit::testing::write_synthetic_mnist(dir / "d", 100, 50, true);
  auto bytes = read_file_bytes(dir / "d" / "train-images-idx3-ubyte.gz");
  bytes.resize(bytes.size() - 100);
  write_file_atomically(dir / "d" / "train-images-idx3-ubyte.gz", std::string(bytes.begin(), bytes.end()));
  const auto r = run_convkit("train --data " + (dir / "d").string() + " --out " + (dir / "o").string());
  expect_one_line_error(r, "train-images-idx3-ubyte.gz: truncated gzip stream");
  EXPECT_FALSE(std::filesystem::exists(dir / "o" / "model.pt"));
}

TEST(Cli, UnwritableOutputFailsBeforeTraining) {
  TempDir dir;
  write_file_atomically(dir / "file", "x");
  const auto r = run_convkit("train --limit 100 --out " + (dir / "file" / "run").string());
  expect_one_line_error(r, "cannot create output directory");
  EXPECT_EQ(r.out.find("Epoch"), std::string::npos);
}

TEST(Cli, SyntheticDatasetTrainsWithoutTheRealOne) {
  TempDir dir;
  convkit::testing::write_synthetic_mnist(dir / "d", 500, 100, false);
  const auto r = run_convkit("train --data " + (dir / "d").string() + " --epochs 1 --out " + (dir / "o").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Number of training examples: 450\n"), std::string::npos);
}

TEST(Cli, ResumeEndsWhereAnUninterruptedRunEnds) {
  TempDir dir;
  const std::string common = " --model mlp --limit 2000 --threads 2 --quiet";
  ASSERT_EQ(run_convkit("train --epochs 3 --out " + (dir / "whole").string() + common).exit_code, 0);
  ASSERT_EQ(run_convkit("train --epochs 1 --out " + (dir / "split").string() + common).exit_code, 0);
  const auto r = run_convkit("train --resume " + (dir / "split").string() + " --epochs 3 --threads 2 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Resuming after epoch 1 of 3"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Epoch: 01"), std::string::npos);
  EXPECT_NE(r.out.find("Epoch: 03"), std::string::npos);

  const auto whole = read_json(dir / "whole" / "metrics.json"), split = read_json(dir / "split" / "metrics.json");
  for (const char* key : {"test_loss", "test_acc", "rotated_test_loss", "rotated_test_acc", "best_epoch", "epochs"}) {
    EXPECT_EQ(whole[key], split[key]) << key;
  }
  const auto hw = read_json(dir / "whole" / "history.json"), hs = read_json(dir / "split" / "history.json");
  ASSERT_EQ(hs.size(), 3u);
  for (size_t e = 0; e < 3; ++e) EXPECT_EQ(hw[e]["valid_loss"], hs[e]["valid_loss"]) << e;
  EXPECT_EQ(read_file_bytes(dir / "whole" / "model.pt"), read_file_bytes(dir / "split" / "model.pt"));

  // A finished run needs a larger --epochs; settings of the run cannot be changed.
  expect_one_line_error(run_convkit("train --resume " + (dir / "split").string()), "already completed 3 epochs");
  expect_one_line_error(run_convkit("train --resume " + (dir / "split").string() + " --lr 0.1 --epochs 4"), "--lr");
  expect_one_line_error(run_convkit("train --resume " + (dir / "nothing").string()), "not a convkit run directory");

  // A damaged or missing resume state names the file.
  write_file_atomically(dir / "split" / "resume.pt", "not an archive");
  expect_one_line_error(run_convkit("train --resume " + (dir / "split").string() + " --epochs 4"),
                        "resume.pt: not a zip archive");
  const auto archive = read_file_bytes(dir / "split" / "model.pt");  // a zip, but not a resume state
  write_file_atomically(dir / "split" / "resume.pt", std::string(archive.begin(), archive.end()));
  expect_one_line_error(run_convkit("train --resume " + (dir / "split").string() + " --epochs 4"),
                        "resume.pt: corrupt resume state");
  std::filesystem::remove(dir / "split" / "resume.pt");
  expect_one_line_error(run_convkit("train --resume " + (dir / "split").string() + " --epochs 4"),
                        "resume.pt: missing");
}

TEST(Cli, EvalReproducesTheTrainedTestNumbers) {
  TempDir dir;
  ASSERT_EQ(run_convkit("train --limit 2000 --epochs 1 --threads 2 --out " + (dir / "run").string()).exit_code, 0);
  const auto metrics = read_json(dir / "run" / "metrics.json");
  const auto r =
      run_convkit("eval --json --threads 2 --limit 2000 --checkpoint " + (dir / "run" / "model.pt").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"], "lenet");
  EXPECT_DOUBLE_EQ(j["test_acc"].get<double>(), metrics["test_acc"].get<double>());
  EXPECT_DOUBLE_EQ(j["test_loss"].get<double>(), metrics["test_loss"].get<double>());
  EXPECT_GT(j["test_acc"].get<double>(), j["rotated_test_acc"].get<double>());

  const auto lines = run_convkit("eval --limit 500 --checkpoint " + (dir / "run" / "model.pt").string());
  EXPECT_TRUE(std::regex_search(lines.out,
                                std::regex("^Test Loss: \\d\\.\\d{3} \\| Test Acc: \\d+\\.\\d{2}%\n"
                                           "Rotated Test Loss: \\d\\.\\d{3} \\| Rotated Test Acc: \\d+\\.\\d{2}%\n$")))
      << lines.out;
  expect_one_line_error(run_convkit("eval --checkpoint " + (dir / "missing.pt").string()), "missing.pt");
  expect_one_line_error(run_convkit("eval --model mlp --checkpoint " + (dir / "run" / "model.pt").string()),
                        "missing keys: hidden_fc.bias");
}

TEST(Cli, PredictAgreesWithTheNetworkOnTestImages) {
  TempDir dir;
  ASSERT_EQ(run_convkit("train --limit 3000 --epochs 2 --threads 2 --out " + (dir / "run").string()).exit_code, 0);
  const auto test = data::load_split(data::kDefaultDataDir, data::kTestFiles, 12);

  // The same images as PNG files, one of them as a dark-on-light "photo" at another size.
  std::string files;
  for (int i = 0; i < 12; ++i) {
    data::Picture image{
        28, 28, std::vector<uint8_t>(test.images[i].data_ptr<uint8_t>(), test.images[i].data_ptr<uint8_t>() + 784)};
    data::write_png(dir / ("img" + std::to_string(i) + ".png"), image);
    files += " " + (dir / ("img" + std::to_string(i) + ".png")).string();
  }
  const auto big = torch::nn::functional::interpolate(
      (255 - test.images[0].to(torch::kFloat)).view({1, 1, 28, 28}),
      torch::nn::functional::InterpolateFuncOptions().size(std::vector<int64_t>{112, 112}).mode(torch::kNearest));
  const auto big_u8 = big.to(torch::kUInt8).contiguous();
  data::write_png(dir / "photo.png",
                  {112, 112, std::vector<uint8_t>(big_u8.data_ptr<uint8_t>(), big_u8.data_ptr<uint8_t>() + 112 * 112)});
  write_file_atomically(dir / "broken.png", "\x89PNG not really");

  const auto r = run_convkit("predict --json --checkpoint " + (dir / "run" / "model.pt").string() + files + " " +
                             (dir / "broken.png").string() + " " + (dir / "photo.png").string());
  EXPECT_NE(r.exit_code, 0);  // broken.png
  EXPECT_NE(r.err.find("broken.png: cannot decode image"), std::string::npos) << r.err;
  const auto results = nlohmann::json::parse(r.out);
  ASSERT_EQ(results.size(), 14u);

  // Reference: the checkpoint's forward pass on the test tensors, as eval computes it.
  auto loaded = eval::load_model(dir / "run" / "model.pt", "", data::kDefaultDataDir);
  const auto probs =
      eval::predict_probabilities(*loaded.model, test.images.to(torch::kFloat), loaded.normalization(), torch::kCPU);
  for (int i = 0; i < 12; ++i) {
    EXPECT_EQ(results[i]["class"].get<int64_t>(), probs[i].argmax().item<int64_t>()) << i;
    EXPECT_NEAR(results[i]["probability"].get<double>(), probs[i].max().item<double>(), 1e-5) << i;
    EXPECT_EQ(results[i]["name"], data::kClassNames[results[i]["class"].get<int64_t>()]);
    EXPECT_EQ(results[i]["top"].size(), 3u);
  }
  EXPECT_TRUE(results[12].contains("error"));
  EXPECT_EQ(results[13]["class"], results[0]["class"]);  // --invert auto undoes the light background

  const auto plain =
      run_convkit("predict --checkpoint " + (dir / "run" / "model.pt").string() + " " + (dir / "img0.png").string());
  EXPECT_EQ(plain.exit_code, 0);
  EXPECT_TRUE(std::regex_search(plain.out, std::regex("img0\\.png: .+ \\(\\d+\\.\\d%\\) \\| top 3: ")));
  expect_one_line_error(run_convkit("predict --invert maybe --checkpoint " + (dir / "run" / "model.pt").string() + " " +
                                    (dir / "img0.png").string()),
                        "--invert");
}

namespace {

bool png_is_real(const std::filesystem::path& file) {
  int w = 0, h = 0, c = 0;
  unsigned char* data = stbi_load(file.string().c_str(), &w, &h, &c, 1);
  if (!data) return false;
  const auto [lo, hi] = std::minmax_element(data, data + w * h);
  const bool varied = *hi - *lo > 100 && w >= 300 && h >= 300;
  stbi_image_free(data);
  return varied;
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1)) ++n;
  return n;
}

}  // namespace

TEST(Cli, RecipesAreRecordedAndAWeightAveragedRunResumesExactly) {
  TempDir dir;
  const std::string common =
      " --model c8k3p1bn-mp2-dr0.1-fc32bn --limit 1500 --threads 2 --quiet --no-report --ema 0.99 --tta flip,shift"
      " --mixup 0.2 --cutmix 1 --aug-erase 0.3 --warmup 0.5 --optimizer sgdw --nesterov --lr 0.05"
      " --weight-decay 5e-4 --no-decay-norms --bn-momentum 0.2";
  ASSERT_EQ(run_convkit("train --epochs 3 --out " + (dir / "whole").string() + common).exit_code, 0);
  ASSERT_EQ(run_convkit("train --epochs 1 --out " + (dir / "split").string() + common).exit_code, 0);
  const auto r = run_convkit("train --resume " + (dir / "split").string() + " --epochs 3 --threads 2 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto whole = read_json(dir / "whole" / "metrics.json"), split = read_json(dir / "split" / "metrics.json");
  for (const char* key : {"test_loss", "test_acc", "rotated_test_acc", "best_epoch"}) {
    EXPECT_EQ(whole[key], split[key]) << key;
  }
  // model.pt holds the weight average: the same bytes either way, and not the trained weights.
  EXPECT_EQ(read_file_bytes(dir / "whole" / "model.pt"), read_file_bytes(dir / "split" / "model.pt"));
  const auto settings = read_json(dir / "whole" / "run.json");
  EXPECT_EQ(settings["ema"], 0.99);
  EXPECT_EQ(settings["tta"], "flip,shift");
  EXPECT_EQ(settings["mixup"], 0.2);
  EXPECT_EQ(settings["cutmix"], 1.0);
  EXPECT_EQ(settings["aug_erase"], 0.3);
  EXPECT_EQ(settings["warmup"], 0.5);
  EXPECT_EQ(settings["optimizer"], "sgdw");
  EXPECT_EQ(settings["no_decay_norms"], true);
  EXPECT_EQ(settings["bn_momentum"], 0.2);
  // eval reads the run's test-time augmentation: the same test accuracy as the run's.
  const auto e = run_convkit("eval --checkpoint " + (dir / "whole" / "model.pt").string() + " --limit 1500 --json");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out)["test_acc"].get<double>(), whole["test_acc"].get<double>(), 1e-9) << e.out;

  expect_one_line_error(run_convkit("train --limit 100 --tta mirror"), "--tta: 'mirror'");
  expect_one_line_error(run_convkit("train --limit 100 --ema 1"), "--ema must be in [0, 1)");
  expect_one_line_error(run_convkit("train --limit 100 --mixup -1"), "--mixup must be from 0 (off) to 100");
  expect_one_line_error(run_convkit("train --limit 100 --aug-erase 2"), "--aug-erase must be in [0, 1]");
  expect_one_line_error(run_convkit("train --limit 100 --bn-momentum 0"), "--bn-momentum must be in (0, 1]");
  expect_one_line_error(run_convkit("train --limit 100 --warmup -1"), "--warmup must be a number of epochs");
  expect_one_line_error(run_convkit("train --limit 100 --optimizer sgdx"), "--optimizer must be one of");
}

TEST(Cli, ReportSetsCalibrationBeforeAndAfterTheAverageAndTheViews) {
  TempDir dir;
  const std::string run = (dir / "run").string();
  const auto r = run_convkit(
      "train --model pw3-c8k3p1bn-mp2-fc32 --limit 1500 --epochs 2 --threads 2 --quiet --ema 0.9"
      " --tta flip --out " +
      run);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto metrics = read_json(dir / "run" / "metrics.json");
  const auto& rows = metrics["calibration_variants"];
  ASSERT_EQ(rows.size(), 3u) << metrics;
  EXPECT_EQ(rows[0]["name"], "trained weights, last epoch");
  EXPECT_EQ(rows[1]["name"], "weight average (--ema 0.9)");
  EXPECT_EQ(rows[2]["name"], "weight average (--ema 0.9) + test-time augmentation (flip)");
  // The average's row is the report's own calibration; the last row is the network the test used.
  EXPECT_DOUBLE_EQ(rows[1]["ece"].get<double>(), metrics["calibration"]["ece"].get<double>());
  EXPECT_NEAR(rows[1]["accuracy"].get<double>(), metrics["per_class"]["accuracy"].get<double>(), 1e-9);
  // test_acc is the tutorial's mean of per-batch accuracies, the row the share of all images.
  EXPECT_NEAR(rows[2]["accuracy"].get<double>(), metrics["test_acc"].get<double>(), 0.01);
  EXPECT_NE(rows[2]["accuracy"], rows[1]["accuracy"]);
  for (const auto& row : rows) {
    EXPECT_GE(row["ece"].get<double>(), 0.0);
    EXPECT_LE(row["ece"].get<double>(), 1.0);
    EXPECT_TRUE(png_is_real(dir / "run" / row["figure"].get<std::string>())) << row;
  }
  // The whitening layer's filters are the ones shown, and model.pt carries them: eval agrees.
  const auto& figures = metrics["figures"];
  EXPECT_NE(std::find(figures.begin(), figures.end(), "figures/filters.png"), figures.end()) << figures;
  const auto html_bytes = read_file_bytes(dir / "run" / "report.html");
  const std::string html(html_bytes.begin(), html_bytes.end());
  EXPECT_NE(html.find("Calibration before and after"), std::string::npos);
  const auto e = run_convkit("eval --checkpoint " + run + "/model.pt --limit 1500 --json");
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_NEAR(nlohmann::json::parse(e.out)["test_acc"].get<double>(), metrics["test_acc"].get<double>(), 1e-9);
}

TEST(Cli, FiguresReportAndComparison) {
  TempDir dir;
  const std::string lenet = (dir / "lenet").string(), mlp = (dir / "mlp").string();
  ASSERT_EQ(run_convkit("train --limit 2000 --epochs 2 --quiet --out " + lenet).exit_code, 0);
  ASSERT_EQ(run_convkit("train --model mlp --limit 2000 --epochs 1 --quiet --out " + mlp).exit_code, 0);

  auto metrics = read_json(dir / "lenet" / "metrics.json");
  const std::vector<std::string> expected = {"samples",  "accuracy", "loss", "confusion", "reliability", "mistakes",
                                             "saliency", "filters",  "pca",  "tsne",      "rotation"};
  ASSERT_EQ(metrics["figures"].size(), expected.size()) << metrics["figures"];
  for (const auto& name : expected) {
    EXPECT_TRUE(png_is_real(dir / "lenet" / "figures" / (name + ".png"))) << name;
  }
  // No conv filters to show for the MLP.
  EXPECT_FALSE(std::filesystem::exists(dir / "mlp" / "figures" / "filters.png"));
  EXPECT_TRUE(png_is_real(dir / "mlp" / "figures" / "tsne.png"));

  // The confusion matrix counts every test image once; its diagonal is the accuracy. The
  // tutorial's test_acc is a mean over batches (31 of 64 images and one of 16 here), which
  // can differ from it by at most 0.024 (the last batch's excess weight).
  int64_t total = 0, diagonal = 0;
  for (size_t t = 0; t < 10; ++t) {
    for (size_t p = 0; p < 10; ++p) total += metrics["confusion_matrix"][t][p].get<int64_t>();
    diagonal += metrics["confusion_matrix"][t][t].get<int64_t>();
  }
  EXPECT_EQ(total, 2000);
  EXPECT_DOUBLE_EQ(metrics["per_class"]["accuracy"].get<double>(), diagonal / 2000.0);
  EXPECT_NEAR(metrics["per_class"]["accuracy"].get<double>(), metrics["test_acc"].get<double>(), 0.024);
  EXPECT_EQ(metrics["per_class"]["weighted avg"]["support"], 2000);
  EXPECT_EQ(metrics["rotation_curve"].size(), 13u);
  EXPECT_EQ(metrics["rotation_images"], 2000);  // the whole --limit test set here
  EXPECT_DOUBLE_EQ(metrics["rotation_curve"][0]["accuracy"].get<double>(), diagonal / 2000.0);

  // The report embeds every figure and names the run's results.
  const auto html_bytes = read_file_bytes(dir / "lenet" / "report.html");
  const std::string html(html_bytes.begin(), html_bytes.end());
  EXPECT_EQ(count_of(html, "src=\"data:image/png;base64,"), expected.size());
  EXPECT_NE(html.find("Classification report"), std::string::npos);
  EXPECT_NE(html.find("Ankle boot"), std::string::npos);
  EXPECT_EQ(html.find("src=\"figures/"), std::string::npos);  // self-contained

  // `convkit report` regenerates the figures and the same analyses from the finished run.
  std::filesystem::remove_all(dir / "lenet" / "figures");
  std::filesystem::remove(dir / "lenet" / "report.html");
  const auto regen = run_convkit("report " + lenet);
  ASSERT_EQ(regen.exit_code, 0) << regen.err;
  for (const auto& name : expected) EXPECT_TRUE(png_is_real(dir / "lenet" / "figures" / (name + ".png"))) << name;
  EXPECT_TRUE(std::filesystem::exists(dir / "lenet" / "report.html"));
  const auto again = read_json(dir / "lenet" / "metrics.json");
  EXPECT_EQ(again["confusion_matrix"], metrics["confusion_matrix"]);
  EXPECT_EQ(again["rotation_curve"], metrics["rotation_curve"]);
  expect_one_line_error(run_convkit("report " + (dir / "nothing").string()), "not a convkit run directory");

  // `convkit compare` overlays the two runs.
  const auto cmp = run_convkit("compare " + lenet + " " + mlp + " --out " + (dir / "cmp").string());
  ASSERT_EQ(cmp.exit_code, 0) << cmp.err;
  EXPECT_TRUE(png_is_real(dir / "cmp" / "rotation.png"));
  const auto cmp_html = read_file_bytes(dir / "cmp" / "compare.html");
  EXPECT_EQ(count_of(std::string(cmp_html.begin(), cmp_html.end()), "<tr><td>"), 2u);

  // A browser renders the report: headless Chromium's screenshot is not blank.
  const auto shot = dir / "shot.png";
  const std::string chromium =
      "chromium --headless --no-sandbox --disable-gpu --hide-scrollbars "
      "--window-size=1280,2400 --screenshot=" +
      shot.string() + " file://" + (dir / "lenet" / "report.html").string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(chromium.c_str()), 0) << "chromium failed (scripts/setup.sh installs it)";
  EXPECT_TRUE(png_is_real(shot));
}

TEST(Cli, PresetsConfigsAndEarlyStopping) {
  TempDir dir;
  // A preset sets the network and its training; explicit flags override it.
  auto r = run_convkit("train --preset competition --epochs 1 --limit 500 --no-report --quiet --out " +
                       (dir / "p").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto settings = read_json(dir / "p" / "run.json");
  EXPECT_EQ(settings["optimizer"], "adamw");
  EXPECT_EQ(settings["epochs"], 1);
  EXPECT_EQ(settings["aug_hflip"], true);
  EXPECT_EQ(settings["ema"], 0.999);
  EXPECT_EQ(settings["tta"], "flip,shift");
  EXPECT_NE(r.out.find("Model: pw3-c32k3p1bn"), std::string::npos) << r.out;

  write_file_atomically(dir / "cfg.json",
                        R"({"model": "lenet-bn", "optimizer": "sgd", "lr": 0.05, "epochs": 1, "limit": 500})");
  r = run_convkit("train --config " + (dir / "cfg.json").string() + " --lr 0.02 --quiet --no-report --out " +
                  (dir / "c").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  settings = read_json(dir / "c" / "run.json");
  EXPECT_EQ(settings["model"], "lenet-bn");
  EXPECT_DOUBLE_EQ(settings["lr"].get<double>(), 0.02);
  write_file_atomically(dir / "bad.json", R"({"model": "lenet", "speed": 3})");
  expect_one_line_error(run_convkit("train --config " + (dir / "bad.json").string()), "unknown setting 'speed'");

  // A learning rate too small to change any weight: the validation loss never improves.
  r = run_convkit("train --lr 1e-30 --patience 2 --epochs 10 --limit 500 --quiet --no-report --out " +
                  (dir / "e").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Early stopping after epoch 3"), std::string::npos) << r.out;
  EXPECT_EQ(read_json(dir / "e" / "history.json").size(), 3u);
  EXPECT_EQ(read_json(dir / "e" / "metrics.json")["best_epoch"], 1);
}

TEST(Cli, SweepWritesASortedLeaderboardAndResumes) {
  TempDir dir;
  write_file_atomically(
      dir / "sweep.json",
      R"({"base": {"epochs": 1, "limit": 1500}, "grid": {"lr": [0.0003, 0.003], "model": ["lenet", "mlp"]}, "jobs": 2})");
  const std::string cmd = "sweep " + (dir / "sweep.json").string() + " --out " + (dir / "s").string();
  auto r = run_convkit(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("Chosen by validation: trial-"), std::string::npos) << r.out;
  const auto csv_bytes = read_file_bytes(dir / "s" / "leaderboard.csv");
  std::istringstream csv(std::string(csv_bytes.begin(), csv_bytes.end()));
  std::string line;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("rank,trial,valid_acc", 0), 0u);
  std::vector<double> accs;
  while (std::getline(csv, line)) {
    const auto first = line.find(','), second = line.find(',', first + 1);
    accs.push_back(std::stod(line.substr(second + 1)));
  }
  ASSERT_EQ(accs.size(), 4u);
  EXPECT_TRUE(std::is_sorted(accs.rbegin(), accs.rend())) << "leaderboard must be best first";
  for (const char* f : {"leaderboard.md", "leaderboard.html", "chosen.json"})
    EXPECT_TRUE(std::filesystem::exists(dir / "s" / f));
  // Trials never see the test set; only the chosen one is evaluated on it.
  EXPECT_FALSE(read_json(dir / "s" / "trial-001" / "metrics.json").contains("test_acc"));
  EXPECT_TRUE(read_json(dir / "s" / "chosen.json").contains("test_acc"));

  const auto before = std::filesystem::last_write_time(dir / "s" / "trial-002" / "model.pt");
  std::filesystem::remove_all(dir / "s" / "trial-003");  // as if interrupted
  r = run_convkit(cmd);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n') > 0, true);
  EXPECT_NE(r.out.find("trial-001: finished earlier, skipped"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("trial-003: valid acc"), std::string::npos) << r.out;
  EXPECT_EQ(std::filesystem::last_write_time(dir / "s" / "trial-002" / "model.pt"), before);
}

// Real FashionMNIST images written as an image-folder tree with `classes` as folder names:
// the first `n_train` training and `n_test` test images whose labels have a folder.
void write_real_tree(const std::filesystem::path& root, const std::vector<std::string>& classes, int n_train,
                     int n_test) {
  const data::Dataset real = data::load_dataset(data::kDefaultDataDir, 10000);
  for (const auto& [split, n] : {std::pair<const data::Split*, int>{&real.train, n_train}, {&real.test, n_test}}) {
    const std::string name = split == &real.train ? "train" : "test";
    for (int i = 0, written = 0; written < n; ++i) {
      const int64_t label = split->labels[i].item<int64_t>();
      if (label >= static_cast<int64_t>(classes.size())) continue;
      const auto file = root / name / classes[label] / (std::to_string(i) + ".png");
      std::filesystem::create_directories(file.parent_path());
      const uint8_t* p = split->images[i].data_ptr<uint8_t>();
      data::write_png(file, {28, 28, std::vector<uint8_t>(p, p + 784)});
      ++written;
    }
  }
}

TEST(Cli, ImageFoldersTrainEvaluateAndPredictWithTheirOwnClassNames) {
  TempDir dir;
  const std::vector<std::string> names = {"top",    "trouser", "pullover", "dress", "coat",
                                          "sandal", "shirt",   "sneaker",  "bag",   "boot"};
  write_real_tree(dir / "tree", names, 1500, 300);
  const auto run = dir / "run";
  const auto trained =
      run_convkit("train --quiet --epochs 1 --data " + (dir / "tree").string() + " --out " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  std::vector<std::string> sorted = names;
  std::sort(sorted.begin(), sorted.end());  // ImageFolder's numbering
  EXPECT_EQ(read_json(run / "model.json")["classes"].get<std::vector<std::string>>(), sorted);
  const auto metrics = read_json(run / "metrics.json");
  EXPECT_EQ(metrics["classes"].get<std::vector<std::string>>(), sorted);
  EXPECT_EQ(metrics["examples"]["test"], 300);
  EXPECT_TRUE(metrics["per_class"].contains("boot"));

  const auto evaluated =
      run_convkit("eval --json --checkpoint " + (run / "model.pt").string() + " --data " + (dir / "tree").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_NEAR(nlohmann::json::parse(evaluated.out)["test_acc"].get<double>(), metrics["test_acc"].get<double>(), 1e-9);

  const auto predicted =
      run_convkit("predict --json --top 20 --checkpoint " + (run / "model.pt").string() + " " +
                  (dir / "tree" / "test" / "trouser").string() + "/" +
                  std::filesystem::directory_iterator(dir / "tree" / "test" / "trouser")->path().filename().string());
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  const auto p = nlohmann::json::parse(predicted.out)[0];
  EXPECT_NE(std::find(sorted.begin(), sorted.end(), p["name"].get<std::string>()), sorted.end());
  EXPECT_EQ(p["top"].size(), 10u);  // --top is bounded by the model's classes

  // The model on a tree of other classes.
  write_real_tree(dir / "three", {"top", "trouser", "pullover"}, 30, 30);
  expect_one_line_error(
      run_convkit("eval --checkpoint " + (run / "model.pt").string() + " --data " + (dir / "three").string()),
      "three: has 3 classes (pullover, top, trouser); the model was trained on 10");
}

// A PNG of 16-bit RGBA samples, written by hand (stb writes 8-bit only): each sample's high byte
// is `rgb`'s, its low byte noise, alpha opaque.
void write_rgba16_png(const std::filesystem::path& file, int width, int height, const std::vector<uint8_t>& rgb) {
  const auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const auto chunk = [&](const std::string& type, const std::string& data) {
    const std::string body = type + data;
    return be32(static_cast<uint32_t>(data.size())) + body +
           be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
  };
  std::string rows;
  for (int y = 0; y < height; ++y) {
    rows.push_back(0);  // filter: none
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < 3; ++c) rows += {static_cast<char>(rgb[(y * width + x) * 3 + c]), static_cast<char>(x * 7)};
      rows += {'\xff', '\xff'};
    }
  }
  uLongf size = compressBound(rows.size());
  std::string packed(size, '\0');
  ASSERT_EQ(compress(reinterpret_cast<Bytef*>(packed.data()), &size, reinterpret_cast<const Bytef*>(rows.data()),
                     rows.size()),
            Z_OK);
  packed.resize(size);
  const std::string header = be32(width) + be32(height) + std::string{16, 6, 0, 0, 0};
  write_file_atomically(
      file, std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", header) + chunk("IDAT", packed) + chunk("IEND", ""));
}

TEST(Cli, ColourImageFoldersTrainAThreeChannelNetwork) {
  TempDir dir;
  // The real FashionMNIST, each class tinted its own colour: a light object on black stays one.
  const std::vector<std::string> names = {"top", "trouser", "pullover", "dress"};
  const std::vector<std::array<int, 3>> tints = {{255, 80, 80}, {80, 255, 80}, {80, 80, 255}, {255, 255, 80}};
  const data::Dataset real = data::load_dataset(data::kDefaultDataDir, 4000);
  for (const auto& [split, n] : {std::pair<const data::Split*, int>{&real.train, 600}, {&real.test, 120}}) {
    const std::string name = split == &real.train ? "train" : "test";
    for (int i = 0, written = 0; written < n; ++i) {
      const int64_t label = split->labels[i].item<int64_t>();
      if (label >= 4) continue;
      const uint8_t* grey = split->images[i].data_ptr<uint8_t>();
      std::vector<uint8_t> rgb;
      for (int p = 0; p < 784; ++p)
        for (int c = 0; c < 3; ++c) rgb.push_back(static_cast<uint8_t>(grey[p] * tints[label][c] / 255));
      const auto file = dir / "tree" / name / names[label] / (std::to_string(i) + ".png");
      std::filesystem::create_directories(file.parent_path());
      data::write_png(file, {28, 28, rgb, 3});
      ++written;
    }
  }
  const auto run = dir / "run";
  const auto trained =
      run_convkit("train --quiet --epochs 2 --data " + (dir / "tree").string() + " --out " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.out.find("images 3x28x28"), std::string::npos) << trained.out;
  EXPECT_NE(trained.out.find("Normalisation: mean ("), std::string::npos) << trained.out;
  const auto info = read_json(run / "model.json");
  EXPECT_EQ(info["input"]["channels"], 3);
  EXPECT_EQ(info["normalization"]["mean"].size(), 3u);
  const auto metrics = read_json(run / "metrics.json");
  EXPECT_GT(metrics["test_acc"].get<double>(), 0.6);  // four classes told apart by shape and colour
  EXPECT_TRUE(std::filesystem::exists(run / "figures" / "samples.png"));
  EXPECT_EQ(models::count_parameters(*models::make_model("lenet", 4, {3, 28, 28})), metrics["parameters"]);

  // predict reads a colour JPEG and a 16-bit RGBA PNG and converts them to the network's input.
  const torch::Tensor trouser = real.test.images[2].to(torch::kInt64);  // the tutorial's test image 2 is a trouser
  ASSERT_EQ(real.test.labels[2].item<int64_t>(), 1);
  std::vector<uint8_t> rgb;
  for (int p = 0; p < 784; ++p)
    for (int c = 0; c < 3; ++c)
      rgb.push_back(static_cast<uint8_t>(trouser.view(-1)[p].item<int64_t>() * tints[1][c] / 255));
  ASSERT_TRUE(stbi_write_jpg((dir / "trouser.jpg").c_str(), 28, 28, 3, rgb.data(), 95));
  write_rgba16_png(dir / "trouser16.png", 28, 28, rgb);
  const auto predicted = run_convkit("predict --json --checkpoint " + (run / "model.pt").string() + " " +
                                     (dir / "trouser.jpg").string() + " " + (dir / "trouser16.png").string());
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  for (const auto& p : nlohmann::json::parse(predicted.out)) EXPECT_EQ(p["name"], "trouser") << p.dump();

  // eval decodes the folders to the model's shape; data of another shape is refused.
  const auto evaluated =
      run_convkit("eval --json --checkpoint " + (run / "model.pt").string() + " --data " + (dir / "tree").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_NEAR(nlohmann::json::parse(evaluated.out)["test_acc"].get<double>(), metrics["test_acc"].get<double>(), 1e-9);
  expect_one_line_error(run_convkit("eval --checkpoint " + (run / "model.pt").string() + " --data " +
                                    (dir / "tree").string() + " --channels 1"),
                        "has images of 1x28x28 (channels x height x width); the model takes 3x28x28");
  expect_one_line_error(
      run_convkit("train --data " + (dir / "tree").string() + " --image-size 28" + " --out " + (dir / "bad").string()),
      "--image-size: '28' is not HEIGHTxWIDTH");
}

TEST(Cli, CifarTrainsLeNetAsPyTorchsCifarTutorial) {
  TempDir dir;
  // CIFAR-10's layout, with pictures the test makes: the class is the colour of a square.
  torch::manual_seed(1);
  const auto records = [](int n, int seed) {
    std::string bytes;
    for (int i = 0; i < n; ++i) {
      const int label = (i * 7 + seed) % 10;
      bytes.push_back(static_cast<char>(label));
      for (int c = 0; c < 3; ++c)
        for (int p = 0; p < 1024; ++p) {
          const bool inside = (p / 32) >= 8 && (p / 32) < 24 && (p % 32) >= 8 && (p % 32) < 24;
          bytes.push_back(static_cast<char>(inside ? (label * (c + 3) * 37) % 256 : (p * 13 + i) % 64));
        }
    }
    return bytes;
  };
  const auto cifar = dir / "cifar-10-batches-bin";
  std::filesystem::create_directories(cifar);
  for (int b = 1; b <= 5; ++b)
    write_file_atomically(cifar / ("data_batch_" + std::to_string(b) + ".bin"), records(200, b));
  write_file_atomically(cifar / "test_batch.bin", records(100, 0));
  write_file_atomically(cifar / "batches.meta.txt",
                        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  const auto run = dir / "run";
  const auto trained = run_convkit("train --quiet --epochs 5 --data " + cifar.string() + " --out " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.out.find("Classes: 10 (airplane, automobile"), std::string::npos) << trained.out;
  EXPECT_NE(trained.out.find("Model: lenet (62006 parameters)"), std::string::npos) << trained.out;
  const auto metrics = read_json(run / "metrics.json");
  EXPECT_EQ(metrics["examples"]["train"], 900);
  EXPECT_GT(metrics["test_acc"].get<double>(), 0.3);  // chance is 0.1
  EXPECT_EQ(read_json(run / "model.json")["input"]["width"], 32);
  // A FashionMNIST model on CIFAR, and CIFAR's model on FashionMNIST: the shapes disagree.
  expect_one_line_error(run_convkit("eval --checkpoint " + (run / "model.pt").string()),
                        "has images of 1x28x28 (channels x height x width); the model takes 3x32x32");
  write_file_atomically(cifar / "data_batch_3.bin", records(200, 3).substr(1));
  expect_one_line_error(run_convkit("train --data " + cifar.string() + " --out " + (dir / "cut").string()),
                        "data_batch_3.bin: has 614599 bytes, not a whole number of 3073-byte CIFAR records");
}

TEST(Cli, AnIdxSetOf47ClassesTrainsWithItsNamesAndAReadableReport) {
  TempDir dir;
  // EMNIST-balanced-like: 47 classes, each a bar at its own place and angle; names in classes.txt.
  std::mt19937 rng(11);
  const auto make = [&](const std::string& images, const std::string& labels, int n) {
    std::vector<uint8_t> pixels(static_cast<size_t>(n) * 784), ys(n);
    for (int i = 0; i < n; ++i) {
      const int label = i % 47;
      ys[i] = static_cast<uint8_t>(label);
      uint8_t* img = pixels.data() + static_cast<size_t>(i) * 784;
      for (int p = 0; p < 784; ++p) img[p] = static_cast<uint8_t>(rng() % 30);
      const bool vertical = label % 2 == 1;
      for (int c = 4; c < 24; ++c) img[vertical ? c * 28 + 3 + label / 2 : (3 + label / 2) * 28 + c] = 255;
    }
    data::write_idx(dir / "emnist" / images, data::kIdxImagesMagic, {n, 28, 28}, pixels);
    data::write_idx(dir / "emnist" / labels, data::kIdxLabelsMagic, {n}, ys);
  };
  std::filesystem::create_directories(dir / "emnist");
  make("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 4700);
  make("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 940);
  std::string names;
  for (int k = 0; k < 47; ++k) names += "class-" + std::to_string(k) + "\n";
  write_file_atomically(dir / "emnist" / "classes.txt", names);
  const auto run = dir / "run";
  const auto trained =
      run_convkit("train --quiet --epochs 2 --data " + (dir / "emnist").string() + " --out " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  EXPECT_NE(trained.out.find("Classes: 47 (class-0, class-1,"), std::string::npos) << trained.out;
  const auto metrics = read_json(run / "metrics.json");
  EXPECT_EQ(metrics["classes"].size(), 47u);
  EXPECT_EQ(metrics["confusion_matrix"].size(), 47u);
  EXPECT_GT(metrics["test_acc"].get<double>(), 0.5);  // chance is 1/47
  std::ifstream html(run / "report.html");
  const std::string report((std::istreambuf_iterator<char>(html)), std::istreambuf_iterator<char>());
  EXPECT_NE(report.find("<h2>Most confused classes</h2>"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(run / "figures" / "confusion.png"));
  const auto predicted = run_convkit("predict --json --top 5 --checkpoint " + (run / "model.pt").string() + " " +
                                     (run / "figures" / "samples.png").string());
  ASSERT_EQ(predicted.exit_code, 0) << predicted.err;
  EXPECT_EQ(nlohmann::json::parse(predicted.out)[0]["name"].get<std::string>().rfind("class-", 0), 0u);
}

TEST(Cli, ImageFolderLayoutsValidationFolderAndOneTree) {
  TempDir dir;
  const std::vector<std::string> names = {"top", "trouser", "pullover"};
  write_real_tree(dir / "tree", names, 600, 150);
  // A val/ folder is the validation set: nothing is split from train/.
  write_real_tree(dir / "val-tree", names, 100, 40);
  std::filesystem::rename(dir / "val-tree" / "train", dir / "tree" / "val");
  const auto with_val = run_convkit("train --quiet --epochs 1 --no-report --data " + (dir / "tree").string() +
                                    " --out " + (dir / "run-val").string());
  ASSERT_EQ(with_val.exit_code, 0) << with_val.err;
  EXPECT_NE(with_val.out.find("Number of training examples: 600\nNumber of validation examples: 100\n"),
            std::string::npos)
      << with_val.out;
  // One tree DIR/<class>/...: 20% of each class is the test set, the same for eval.
  std::filesystem::rename(dir / "tree" / "train", dir / "one");
  const auto one = run_convkit("train --quiet --epochs 1 --no-report --data " + (dir / "one").string() + " --out " +
                               (dir / "run-one").string());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  int64_t tested = 0;
  for (const auto& name : names) {
    const auto files = std::distance(std::filesystem::directory_iterator(dir / "one" / name), {});
    tested += std::llround(0.2 * static_cast<double>(files));
  }
  EXPECT_NE(one.out.find("Number of testing examples: " + std::to_string(tested) + "\n"), std::string::npos) << one.out;
  const auto metrics = read_json(dir / "run-one" / "metrics.json");
  const auto evaluated = run_convkit("eval --json --checkpoint " + (dir / "run-one" / "model.pt").string() +
                                     " --data " + (dir / "one").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_NEAR(nlohmann::json::parse(evaluated.out)["test_acc"].get<double>(), metrics["test_acc"].get<double>(), 1e-9);
  expect_one_line_error(run_convkit("train --data " + (dir / "one").string() + " --test-split 1.5"), "--test-split");
}

TEST(Cli, LrFindIsReproducibleAndSuggestsTheSteepestDescent) {
  TempDir dir;
  const std::string common = "lr-find --limit 2000 --steps 30 --threads 2 --quiet --out ";
  for (const char* out : {"a", "b"}) {
    const auto r = run_convkit(common + (dir / out).string());
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    EXPECT_NE(r.out.find("Suggested learning rate: "), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("(lr_find.json, lr_find.png)"), std::string::npos) << r.out;
  }
  const auto a = read_json(dir / "a" / "lr_find.json"), b = read_json(dir / "b" / "lr_find.json");
  EXPECT_EQ(a["points"], b["points"]);
  EXPECT_EQ(a["suggestion"], b["suggestion"]);
  EXPECT_EQ(a["settings"]["model"], "lenet");

  const auto& points = a["points"];
  ASSERT_GE(points.size(), 2u) << a;
  ASSERT_LE(points.size(), 30u);
  EXPECT_EQ(a["stopped_early"].get<bool>(), points.size() < 30u);
  // From --start-lr up by one constant factor a step, which reaches --end-lr at the 30th.
  EXPECT_DOUBLE_EQ(points[0]["lr"].get<double>(), 1e-7);
  const double ratio = std::pow(10 / 1e-7, 1.0 / 29);
  for (size_t i = 1; i < points.size(); ++i) {
    EXPECT_NEAR(points[i]["lr"].get<double>() / points[i - 1]["lr"].get<double>(), ratio, 1e-9) << i;
  }
  // The smoothed losses are fastai's bias-corrected moving average of the batch losses, and the
  // network learned at some rate in the range.
  double average = 0, weight = 1, lowest = points[0]["loss"].get<double>();
  for (const auto& p : points) {
    average = 0.98 * average + 0.02 * p["loss"].get<double>();
    weight *= 0.98;
    EXPECT_NEAR(p["smoothed"].get<double>(), average / (1 - weight), 1e-9) << p;
    lowest = std::min(lowest, p["loss"].get<double>());
  }
  EXPECT_LT(lowest, 0.95 * points[0]["loss"].get<double>()) << points;

  const double suggestion = a["suggestion"].get<double>();
  EXPECT_GE(suggestion, 1e-7);
  EXPECT_LE(suggestion, 10.0);
  const auto steepest = a["steepest_index"].get<size_t>();
  ASSERT_LT(steepest, points.size());
  EXPECT_EQ(points[steepest]["lr"].get<double>(), suggestion);
  std::vector<double> smoothed;
  for (const auto& p : points) smoothed.push_back(p["smoothed"].get<double>());
  EXPECT_EQ(steepest, run::steepest_descent(smoothed));
  EXPECT_TRUE(png_is_real(dir / "a" / "lr_find.png"));
  EXPECT_FALSE(std::filesystem::exists(dir / "a" / "lr_find.json.tmp"));
  EXPECT_FALSE(std::filesystem::exists(dir / "a" / "lr_find.png.tmp"));

  // --config and the run's flags shape the network as they do for train.
  write_file_atomically(dir / "cfg.json", R"({"model": "mlp", "batch_size": 32})");
  const auto configured = run_convkit("lr-find --limit 500 --steps 3 --quiet --config " + (dir / "cfg.json").string() +
                                      " --batch-size 16 --out " + (dir / "c").string());
  ASSERT_EQ(configured.exit_code, 0) << configured.err;
  const auto settings = read_json(dir / "c" / "lr_find.json")["settings"];
  EXPECT_EQ(settings["model"], "mlp");
  EXPECT_EQ(settings["batch_size"], 16);

  expect_one_line_error(run_convkit("lr-find --steps 1"), "--steps");
  expect_one_line_error(run_convkit("lr-find --start-lr 0"), "--start-lr");
  expect_one_line_error(run_convkit("lr-find --start-lr 1e-3 --end-lr 1e-4"), "--end-lr");
  expect_one_line_error(run_convkit("lr-find --lr -1"), "--lr");
}
