#include "checkpoint/resume.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <sstream>

#include "checkpoint/zip_archive.h"
#include "train/pytorch_random.h"
#include "util/error.h"
#include "util/files.h"

namespace convkit::checkpoint {
namespace {

// Runs `read` on the archive in `bytes`; LibTorch's errors become one line naming `file`.
template <class Read>
auto read_resume_archive(const std::string& bytes, const std::filesystem::path& file, Read read) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(bytes.data(), bytes.size());
    return read(archive);
  } catch (const c10::Error& e) {
    throw file_error(file.string(), "corrupt resume state (" + first_line(e.what_without_backtrace()) + ")");
  }
}

}  // namespace

void save_resume_point(const std::filesystem::path& file, torch::nn::Module& model, torch::optim::Optimizer& optimizer,
                       const ResumePoint& point, train::WeightAverage* average) {
  torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
  model.save(model_archive);
  if (average) {
    torch::serialize::OutputArchive average_archive;
    average->model().save(average_archive);
    archive.write("average", average_archive);
    archive.write("average_updates", torch::tensor(average->updates()));
  }
  optimizer.save(optimizer_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optimizer_archive);
  archive.write("rng_state", train::global_generator_state());
  archive.write("completed_epochs", torch::tensor(point.completed_epochs));
  archive.write("best_valid_loss", torch::tensor(point.best_valid_loss, torch::kDouble));
  archive.write("best_epoch", torch::tensor(point.best_epoch));
  // Serialised in memory first: LibTorch's file writer reports a full disk from a destructor,
  // which would end the process; write_file_atomically checks every write instead.
  std::ostringstream bytes;
  archive.save_to(bytes);
  write_file_atomically(file, bytes.str());
}

std::string read_resume_file(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) {
    throw file_error(file.string(), "missing: the run has no completed epoch to resume from");
  }
  require_regular_file(file);
  // LibTorch's reader allocates what each record declares: the sizes are checked first.
  const ZipArchive checked(file);
  const std::vector<uint8_t> bytes = read_file_bytes(file);
  return std::string(bytes.begin(), bytes.end());
}

void load_resume_weights(const std::string& bytes, const std::filesystem::path& file, torch::nn::Module& model) {
  read_resume_archive(bytes, file, [&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive model_archive;
    archive.read("model", model_archive);
    model.load(model_archive);
  });
}

void load_resume_average(const std::string& bytes, const std::filesystem::path& file, train::WeightAverage& average) {
  read_resume_archive(bytes, file, [&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive average_archive;
    torch::Tensor updates;
    if (!archive.try_read("average", average_archive) || !archive.try_read("average_updates", updates))
      throw file_error(file.string(), "has no weight average to resume --ema from");
    average.model().load(average_archive);
    average.set_updates(updates.item<int64_t>());
  });
}

ResumePoint load_resume_point(const std::string& bytes, const std::filesystem::path& file,
                              torch::optim::Optimizer& optimizer) {
  return read_resume_archive(bytes, file, [&](torch::serialize::InputArchive& archive) {
    torch::serialize::InputArchive optimizer_archive;
    archive.read("optimizer", optimizer_archive);
    optimizer.load(optimizer_archive);
    torch::Tensor rng, epochs, best_loss, best_epoch;
    archive.read("rng_state", rng);
    archive.read("completed_epochs", epochs);
    archive.read("best_valid_loss", best_loss);
    archive.read("best_epoch", best_epoch);
    train::set_global_generator_state(rng);
    return ResumePoint{epochs.item<int64_t>(), best_loss.item<double>(), best_epoch.item<int64_t>()};
  });
}

}  // namespace convkit::checkpoint
