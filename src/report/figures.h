// A run's figures: RUN_DIR/figures/*.png, drawn from its analyses and history.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/normalization.h"
#include "models/classifier.h"
#include "report/run_analysis.h"
#include "train/history.h"

namespace convkit::report {

// Every figure, in the report's order of names (samples, accuracy, loss, confusion,
// reliability, mistakes, saliency, filters, pca, tsne, rotation); returns those written, as
// "figures/NAME.png".
std::vector<std::string> write_figures(const std::filesystem::path& run_dir, const RunAnalysis& analysis,
                                       models::ClassifierImpl& model, const data::Dataset& data,
                                       const data::Normalization& norm, const std::vector<train::EpochRecord>& history,
                                       const std::string& model_name);

}  // namespace convkit::report
