#include "train/history.h"

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/format.h"

namespace convkit::train {

nlohmann::json history_json(const std::vector<EpochRecord>& history) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : history) {
    rows.push_back({{"epoch", r.epoch},
                    {"train_loss", r.train.loss},
                    {"train_acc", r.train.acc},
                    {"valid_loss", r.valid.loss},
                    {"valid_acc", r.valid.acc},
                    {"train_seconds", r.train_seconds},
                    {"seconds", r.seconds}});
  }
  return rows;
}

std::vector<EpochRecord> history_from_json(const nlohmann::json& rows, const std::string& source) {
  std::vector<EpochRecord> history;
  try {
    if (!rows.is_array()) throw file_error(source, "invalid history: not a list of epochs");
    for (const auto& row : rows) {
      EpochRecord r;
      r.epoch = row.at("epoch").get<int64_t>();
      r.train = {row.at("train_loss").get<double>(), row.at("train_acc").get<double>()};
      r.valid = {row.at("valid_loss").get<double>(), row.at("valid_acc").get<double>()};
      r.train_seconds = row.at("train_seconds").get<double>();
      r.seconds = row.at("seconds").get<double>();
      history.push_back(r);
    }
  } catch (const nlohmann::json::exception& e) {
    throw file_error(source, std::string("invalid history: ") + e.what());
  }
  return history;
}

std::string epoch_lines(const EpochRecord& r) {
  const int mins = static_cast<int>(r.seconds / 60);
  const int secs = static_cast<int>(r.seconds - mins * 60);
  return strprintf("Epoch: %02lld | Epoch Time: %dm %ds\n", static_cast<long long>(r.epoch), mins, secs) +
         strprintf("\tTrain Loss: %.3f | Train Acc: %.2f%%\n", r.train.loss, r.train.acc * 100) +
         strprintf("\t Val. Loss: %.3f |  Val. Acc: %.2f%%\n", r.valid.loss, r.valid.acc * 100);
}

}  // namespace convkit::train
