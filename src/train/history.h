// A run's per-epoch record, and history.json's rows.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "train/loop.h"

namespace convkit::train {

struct EpochRecord {
  int64_t epoch = 0;
  EpochStats train, valid;
  double train_seconds = 0, seconds = 0;
};

// [{epoch, train_loss, train_acc, valid_loss, valid_acc, train_seconds, seconds}, ...]
nlohmann::json history_json(const std::vector<EpochRecord>& history);

// The rows of a history.json; an Error naming `source` when one is malformed.
std::vector<EpochRecord> history_from_json(const nlohmann::json& rows, const std::string& source);

// The tutorial's three lines for a finished epoch.
std::string epoch_lines(const EpochRecord& record);

}  // namespace convkit::train
