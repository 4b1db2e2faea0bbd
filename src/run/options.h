// Everything `convkit train` can be told, with its defaults: the one place a default lives
// (--help shows these values, `eval` starts from them).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "data/dataset.h"
#include "data/mixing.h"
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

  // How the dataset is read (data::DataOptions; the empty values take what the data holds).
  std::string dataset;         // idx|folder|cifar; empty: told by what --data holds
  int64_t channels = 0;        // 1 or 3 converts
  std::string image_size;      // "HxW" resizes; empty: the data's own size
  bool skip_bad = false;       // image folders: skip files that cannot be decoded, and say how many
  std::string label = "fine";  // CIFAR-100: fine (100 classes) or coarse (20)
  int64_t max_memory = 0;      // MiB the images may take in memory; 0: half the machine's
  double test_split = 0.2;     // one image-folder tree (DIR/<class>/...): the share of each class tested

  int world_size = 1;  // processes of a data-parallel run: recorded, set by the run (--nproc or torchrun)
  bool exact = false;  // LibTorch's kernels only: bit-identical to the Python tutorial, slower
  bool test = true;    // evaluate the test sets (sweeps select on validation only)

  // Beyond the tutorial (the defaults keep it exact).
  train::OptimizerSettings optimizer;
  train::ScheduleSettings schedule;
  double label_smoothing = 0;
  int64_t patience = 0;  // early stopping on validation loss (0: off)
  data::Augmentation augmentation;
  data::Mixing mixing;
  double ema = 0;            // decay of the weight average evaluated in the network's place (0: off)
  std::string tta = "none";  // test-time augmentation of the test sets (models::parse_tta)
  double bn_momentum = 0.1;  // batch norm's running statistics, PyTorch's default

  // How this process runs, never recorded with the run.
  bool quiet = false;   // no progress bars
  bool resume = false;  // continue the run in out_dir from its last completed epoch
  bool report = true;   // figures/ and report.html after the test
};

std::filesystem::path out_dir_for(const TrainOptions& options);

// How the run reads its dataset.
data::DataOptions data_options(const TrainOptions& options);

// The settings that say how a dataset is read, by key: `eval` takes them too.
inline constexpr const char* kDataSettings[] = {"dataset", "channels",   "image_size", "skip_bad",
                                                "label",   "max_memory", "test_split"};

}  // namespace convkit::run
