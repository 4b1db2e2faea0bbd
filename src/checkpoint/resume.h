// RUN_DIR/resume.pt: everything needed to continue a run after a completed epoch.
#pragma once

#include <torch/nn/module.h>
#include <torch/optim/optimizer.h>

#include <filesystem>
#include <limits>
#include <string>

namespace convkit::checkpoint {

// Besides the weights, the optimiser's state (Adam's moments and step counts) and the global
// generator's state, the archive keeps the best-so-far bookkeeping.
struct ResumePoint {
  int64_t completed_epochs = 0;
  double best_valid_loss = std::numeric_limits<double>::infinity();
  int64_t best_epoch = 0;
};

// Written atomically; reads the global generator's state.
void save_resume_point(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       const ResumePoint& point);

// The resume archive's bytes, its records' sizes checked; an Error naming the file when it is
// missing (the run has no completed epoch) or not a resume archive. The loaders below read
// these bytes, so that one rank can read the file and hand them to the others.
std::string read_resume_file(const std::filesystem::path& file);

// The resume point's weights. Module::load gives each parameter new storage, so this comes
// before flatten_parameters ties the parameters to the optimiser's flat buffer. `file` names
// where the bytes came from, for errors.
void load_resume_weights(const std::string& bytes, const std::filesystem::path& file, torch::nn::Module& model);

// The rest of the resume point: the optimiser's state, the generator (set as the global one),
// the bookkeeping.
ResumePoint load_resume_point(const std::string& bytes, const std::filesystem::path& file,
                              torch::optim::Optimizer& optimizer);

}  // namespace convkit::checkpoint
