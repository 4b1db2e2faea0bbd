// RUN_DIR/resume.pt: everything needed to continue a run after a completed epoch.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <limits>
#include <string>

#include "train/weight_average.h"

namespace convkit::checkpoint {

// Besides the weights, the optimiser's state (Adam's moments and step counts) and the global
// generator's state, the archive keeps the best-so-far bookkeeping.
struct ResumePoint {
  int64_t completed_epochs = 0;
  double best_valid_loss = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0;
};

// Written atomically; reads the global generator's state. With --ema, the weight average too.
void save_resume_point(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       const ResumePoint& point, train::WeightAverage* average = nullptr);

// The resume archive's bytes, its records' sizes checked; an Error naming the file when it is
// missing (the run has no completed epoch) or not a resume archive. The loaders below read
// these bytes, so that one rank can read the file and hand them to the others.
std::string read_resume_file(const std::filesystem::path& file);

// The resume point's weights. Module::load gives each parameter new storage, so this comes
// before flatten_parameters ties the parameters to the optimiser's flat buffer. `file` names
// where the bytes came from, for errors.
void load_resume_weights(const std::string& bytes, const std::filesystem::path& file, torch::nn::Module& model);

// The weight average's network and its count of updates; an Error naming `file` when the
// archive has none.
void load_resume_average(const std::string& bytes, const std::filesystem::path& file, train::WeightAverage& average);

// The rest of the resume point: the optimiser's state, the generator (set as the global one),
// the bookkeeping.
ResumePoint load_resume_point(const std::string& bytes, const std::filesystem::path& file,
                              torch::optim::Optimizer& optimizer);

}  // namespace convkit::checkpoint
