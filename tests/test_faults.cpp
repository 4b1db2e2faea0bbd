// Unlucky users on the real FashionMNIST: a signal mid-run, two runs on one directory, a run
// cut short after its epochs, a diverging run, absurd flags. Every file stays whole, and
// every refusal is one line naming what to change.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "checkpoint/state_dict.h"
#include "cli_util.h"
#include "util/files.h"

extern char** environ;

using namespace convkit;
using namespace convkit::testing;

namespace {

// `convkit ARGS` started in the background, its stdout and stderr into files.
struct Background {
  pid_t pid = 0;
  std::filesystem::path out, err;
};

Background start_convkit(const std::string& args, const TempDir& dir, const std::string& name) {
  Background b{0, dir / (name + ".out"), dir / (name + ".err")};
  const std::string cmd = "exec " + std::string(CONVKIT_BIN) + " " + args + " > " + b.out.string() + " 2> " +
                          b.err.string() + " < /dev/null";
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  EXPECT_EQ(posix_spawn(&b.pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ), 0);
  return b;
}

std::string text_of(const std::filesystem::path& file) {
  std::ifstream in(file);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits until `file` contains `needle` (at most a minute).
bool wait_for(const std::filesystem::path& file, const std::string& needle) {
  for (int i = 0; i < 600; ++i) {
    if (text_of(file).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return false;
}

int exit_status(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool has_temp_files(const std::filesystem::path& dir) {
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir))
    if (entry.path().extension() == ".tmp") return true;
  return false;
}

const std::string kRun = "train --limit 3000 --threads 1 --quiet --no-report ";

}  // namespace

TEST(Faults, SigintStopsCleanlyAndResumeFinishesWithTheSameNumbers) {
  TempDir dir;
  const std::string out = (dir / "run").string();
  Background b = start_convkit(kRun + "--epochs 30 --out " + out, dir, "first");
  ASSERT_TRUE(wait_for(b.out, "Epoch: 02")) << text_of(b.err);
  kill(b.pid, SIGINT);
  EXPECT_EQ(exit_status(b.pid), 130);
  const std::string err = text_of(b.err);
  EXPECT_NE(err.find("interrupted by SIGINT"), std::string::npos) << err;
  EXPECT_NE(err.find("convkit train --resume " + out), std::string::npos) << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_FALSE(has_temp_files(dir / "run"));
  EXPECT_NO_THROW(checkpoint::read_state_dict(dir / "run" / "model.pt"));

  const RunOutput resumed = run_convkit("train --resume " + out + " --quiet");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const RunOutput whole = run_convkit(kRun + "--epochs 30 --out " + (dir / "whole").string());
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  const auto a = read_json(dir / "run" / "metrics.json"), c = read_json(dir / "whole" / "metrics.json");
  EXPECT_EQ(a["test_loss"], c["test_loss"]);
  EXPECT_EQ(a["rotated_test_acc"], c["rotated_test_acc"]);
}

TEST(Faults, ASecondWriterIsRefusedWithThePidOfTheFirst) {
  TempDir dir;
  const std::string out = (dir / "run").string();
  Background first = start_convkit(kRun + "--epochs 200 --out " + out, dir, "first");
  ASSERT_TRUE(wait_for(first.out, "Epoch: 01")) << text_of(first.err);
  const RunOutput second = run_convkit(kRun + "--epochs 1 --out " + out);
  expect_one_line_error(second, "in use by another convkit process (PID " + std::to_string(first.pid) + ")");
  kill(first.pid, SIGTERM);
  EXPECT_EQ(exit_status(first.pid), 143);
  // The lock died with its process: the directory is free again.
  const RunOutput third = run_convkit("train --resume " + out + " --epochs 3 --quiet --no-report");
  EXPECT_EQ(third.exit_code, 0) << third.err;
}

TEST(Faults, ResumeFinishesARunCutShortAfterItsEpochs) {
  TempDir dir;
  const std::string out = (dir / "run").string();
  ASSERT_EQ(run_convkit(kRun + "--epochs 2 --out " + out).exit_code, 0);
  const auto finished = read_json(dir / "run" / "metrics.json");
  std::filesystem::remove(dir / "run" / "metrics.json");  // as if killed during the test
  const RunOutput r = run_convkit("train --resume " + out + " --quiet --no-report");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("Finishing the run: its 2 epochs are done"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("Epoch: "), std::string::npos) << r.out;
  EXPECT_EQ(read_json(dir / "run" / "metrics.json")["test_acc"], finished["test_acc"]);
  expect_one_line_error(run_convkit("train --resume " + out), "already completed 2 epochs");
  // A run that is refused before it trains removes nothing of the run there.
  expect_one_line_error(run_convkit(kRun + "--epochs 2 --lr -1 --out " + out), "--lr");
  expect_one_line_error(run_convkit(kRun + "--epochs 2 --data " + (dir / "no-data").string() + " --out " + out),
                        "no-data");
  for (const char* file : {"metrics.json", "resume.pt", "history.json", "model.pt"})
    EXPECT_TRUE(std::filesystem::exists(dir / "run" / file)) << file << " was removed by a refused run";
}

TEST(Faults, ADivergingRunStopsAtOnceWithAClearMessage) {
  TempDir dir;
  const RunOutput r = run_convkit(kRun + "--epochs 2 --lr 1e18 --out " + (dir / "run").string());
  expect_one_line_error(r, "training diverged: the loss is");
}

TEST(Faults, AbsurdCountsAreRefusedAtParseTime) {
  expect_one_line_error(run_convkit("train --epochs 18446744073709551616"), "--epochs");
  expect_one_line_error(run_convkit("train --seed -1"), "--seed: '-1' is not an integer");
  expect_one_line_error(run_convkit("train --threads 100000"), "--threads must be 0 (all cores) or a count");
  expect_one_line_error(run_convkit("train --batch-size 64.9"), "--batch-size: '64.9' is not an integer");
  expect_one_line_error(run_convkit("eval --checkpoint x.pt --seed -1"), "--seed");
  expect_one_line_error(run_convkit("sweep s.json --jobs 100000"), "--jobs");
}

TEST(Faults, AFullDiskIsAnErrorAndLeavesNoHalfFile) {
  TempDir dir;
  std::filesystem::create_directories(dir / "disk");
  // 400 KB: room for model.pt (about 180 KB) but not for resume.pt (about 550 KB) beside it.
  const std::string mount = "mount -t tmpfs -o size=400k convkit-test " + (dir / "disk").string() + " 2>/dev/null";
  if (std::system(mount.c_str()) != 0) GTEST_SKIP() << "cannot mount a small tmpfs here (needs root and mount rights)";
  struct Unmount {
    std::string dir;
    ~Unmount() { EXPECT_EQ(std::system(("umount " + dir).c_str()), 0); }
  } unmount{(dir / "disk").string()};
  const RunOutput r = run_convkit(kRun + "--epochs 2 --out " + (dir / "disk" / "run").string());
  expect_one_line_error(r, "resume.pt: write failed (disk full?)");
  EXPECT_FALSE(has_temp_files(dir / "disk"));
  EXPECT_NO_THROW(checkpoint::read_state_dict(dir / "disk" / "run" / "model.pt"));
}

TEST(Faults, ATrainingSetTooSmallToSplitIsRefused) {
  TempDir dir;
  write_synthetic_mnist(dir / "data", 1, 20, false);  // one training image: 0 to train on, 1 to validate
  const RunOutput r =
      run_convkit("train --quiet --data " + (dir / "data").string() + " --out " + (dir / "run").string());
  expect_one_line_error(r, "has 1 training images: too few to split 90/10");
}
