#include "run/report_run.h"

#include <nlohmann/json.hpp>
#include <ostream>

#include "eval/load_model.h"
#include "report/run_report.h"
#include "run/run_dir.h"
#include "run/run_lock.h"
#include "run/settings.h"
#include "train/history.h"
#include "util/files.h"

namespace convkit::run {

void regenerate_report(const std::filesystem::path& run_dir, const torch::Device& device, std::ostream& out) {
  const RunDir run{run_dir};
  const TrainOptions settings = read_run_options(run_dir);
  const RunLock lock(run_dir);
  const nlohmann::json metrics = read_json_file(run.metrics());
  const auto history = train::history_from_json(read_json_file(run.history()), run.history().string());
  eval::LoadedModel loaded = eval::load_model(run.model(), "", settings.data_dir);
  loaded.model->to(device);
  const data::Dataset data = data::load_dataset(settings.data_dir, settings.limit, data_options(settings));
  const nlohmann::json updated =
      report::write_run_report(run_dir, *loaded.model, data, loaded.normalization(), device, history, metrics);
  write_file_atomically(run.metrics(), updated.dump(2) + "\n");
  out << "Report written to " << (run_dir / "report.html").string() << " (figures in " << (run_dir / "figures").string()
      << "/)\n";
}

}  // namespace convkit::run
