// Everything `convkit train` can be told, with its defaults: the one place a default lives
// (--help shows these values, `eval` starts from them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "data/transforms.h"
#include "train/optimizer.h"
#include "train/schedule.h"

namespace convkit::run {

struct TrainOptions {
  // The tutorial's settings.
  std::string model = "lenet";
  int64_t epochs = 10;
  int64_t batch_size = 64;
  uint64_t seed = 1234;
  std::string data_dir = data::kDefaultDataDir;
  std::string out_dir;  // empty: runs/<model>
  int threads = 0;      // 0: all cores
  std::string device = "auto";
  double rotation = 25.0;  // degrees for the rotated test set
  int64_t limit = 0;       // 0: all images
  std::string image_size;  // image folders: "28x28" resizes pictures of other sizes; empty refuses them
  bool skip_bad = false;   // image folders: skip files that cannot be decoded, and say how many
  bool exact = false;      // LibTorch's kernels only: bit-identical to the Python tutorial, slower
  bool test = true;        // evaluate the test sets (sweeps select on validation only)

  // Beyond the tutorial (the defaults keep it exact).
  train::OptimizerSettings optimizer;
  train::ScheduleSettings schedule;
  double label_smoothing = 0;
  int64_t patience = 0;  // early stopping on validation loss (0: off)
  data::Augmentation augmentation;

  // How this process runs, never recorded with the run.
  bool quiet = false;   // no progress bars
  bool resume = false;  // continue the run in out_dir from its last completed epoch
  bool report = true;   // figures/ and report.html after the test
};

std::filesystem::path out_dir_for(const TrainOptions& options);

// How the run reads image folders.
data::FolderOptions folder_options(const TrainOptions& options);

}  // namespace convkit::run
