#include "checkpoint/model_info.h"

#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"

namespace convkit::checkpoint {
namespace {

constexpr const char* kFormat = "convkit-checkpoint-1";

}  // namespace

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint) {
  auto p = checkpoint;
  return p.replace_extension(".json");
}

void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info) {
  nlohmann::json j = {{"format", kFormat},
                      {"model", info.model},
                      {"num_classes", info.num_classes},
                      {"normalization", {{"mean", info.mean}, {"std", info.std}}},
                      {"classes", info.classes}};
  write_file_atomically(info_path_for(checkpoint), j.dump(2) + "\n");
}

std::optional<CheckpointInfo> read_checkpoint_info(const std::filesystem::path& checkpoint) {
  const auto path = info_path_for(checkpoint);
  if (!std::filesystem::exists(path)) return std::nullopt;
  // Only convkit's own file, recognised by its format key: any other JSON that happens to sit
  // beside a checkpoint (a Python script's, another tool's) is none of its business.
  // A file there that cannot be read is reported (it may well be convkit's); one that is not
  // JSON is not convkit's, and is left alone.
  const std::vector<uint8_t> bytes = read_file_bytes(path, kMaxJsonBytes);
  const nlohmann::json j = nlohmann::json::parse(bytes.begin(), bytes.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("format", std::string()) != kFormat) return std::nullopt;
  try {
    CheckpointInfo info;
    info.model = j.at("model").get<std::string>();
    info.num_classes = j.at("num_classes").get<int64_t>();
    info.mean = j.at("normalization").at("mean").get<float>();
    info.std = j.at("normalization").at("std").get<float>();
    if (j.contains("classes")) info.classes = j.at("classes").get<std::vector<std::string>>();
    if (static_cast<int64_t>(info.classes.size()) != info.num_classes)
      throw file_error(path.string(), "invalid checkpoint info: " + std::to_string(info.classes.size()) +
                                          " class names for " + std::to_string(info.num_classes) + " classes");
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path.string(), std::string("invalid checkpoint info: ") + e.what());
  }
}

}  // namespace convkit::checkpoint
