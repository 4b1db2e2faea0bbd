// The convkit binary as a user runs it: real data on a --limit subset, bad flags, bad files.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>

#include "data/idx.h"
#include "models/models.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/files.h"

using namespace convkit;
using convkit::testing::TempDir;

namespace {

struct RunOutput {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

RunOutput run_convkit(const std::string& args) {
  TempDir tmp;
  const std::string cmd = std::string(CONVKIT_BIN) + " " + args + " > " + (tmp / "out").string() + " 2> " +
                          (tmp / "err").string() + " < /dev/null";
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::filesystem::path& p) {
    const auto b = read_file_bytes(p);
    return std::string(b.begin(), b.end());
  };
  return {WEXITSTATUS(status), slurp(tmp / "out"), slurp(tmp / "err")};
}

nlohmann::json read_json(const std::filesystem::path& p) {
  const auto b = read_file_bytes(p);
  return nlohmann::json::parse(b.begin(), b.end());
}

void expect_one_line_error(const RunOutput& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
}

}  // namespace

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
  EXPECT_TRUE(std::regex_search(r.out, std::regex("\nRotated Test Loss: \\d\\.\\d{3} \\| Rotated Test Acc: \\d+\\.\\d{2}%\n")));
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
  const auto info = train::read_checkpoint_info(dir / "run" / "model.pt");
  ASSERT_TRUE(info.has_value());
  auto model = models::make_model(info->model);
  train::load_state_dict(*model, train::read_state_dict(dir / "run" / "model.pt"), "model.pt");
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
