#include "checkpoint/model_info.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "util/error.h"
#include "util/files.h"

namespace convkit::checkpoint {
namespace {

constexpr const char* kFormat = "convkit-checkpoint-1";

}  // namespace

nlohmann::json normalization_json(const data::Normalization& norm) {
  if (norm.channels() == 1) return {{"mean", norm.mean[0]}, {"std", norm.std[0]}};
  return {{"mean", norm.mean}, {"std", norm.std}};
}

data::Normalization normalization_from_json(const nlohmann::json& j, const std::string& source) {
  const auto values = [&](const char* key) {
    const nlohmann::json& v = j.at(key);
    std::vector<float> out = v.is_array() ? v.get<std::vector<float>>() : std::vector<float>{v.get<float>()};
    if (out.empty()) throw file_error(source, std::string("normalization: no ") + key);
    return out;
  };
  data::Normalization norm{values("mean"), values("std")};
  if (norm.mean.size() != norm.std.size())
    throw file_error(source, "normalization: a mean and a std per channel expected");
  for (const float s : norm.std)
    if (!(s > 0) || !std::isfinite(s)) throw file_error(source, "normalization: std must be positive");
  return norm;
}

namespace {}  // namespace

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint) {
  auto p = checkpoint;
  return p.replace_extension(".json");
}

void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info) {
  nlohmann::json j = {
      {"format", kFormat},
      {"model", info.model},
      {"num_classes", info.num_classes},
      {"input", {{"channels", info.shape.channels}, {"height", info.shape.height}, {"width", info.shape.width}}},
      {"normalization", normalization_json(info.normalization)},
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
    info.normalization = normalization_from_json(j.at("normalization"), path.string());
    if (j.contains("classes")) info.classes = j.at("classes").get<std::vector<std::string>>();
    if (j.contains("input")) {
      const nlohmann::json& input = j.at("input");
      info.shape = {input.at("channels").get<int64_t>(), input.at("height").get<int64_t>(),
                    input.at("width").get<int64_t>()};
    }
    if ((info.shape.channels != 1 && info.shape.channels != 3) || info.shape.height < 1 || info.shape.width < 1 ||
        info.shape.height > data::kMaxImageSide || info.shape.width > data::kMaxImageSide)
      throw file_error(path.string(), "invalid checkpoint info: input of " + info.shape.str());
    if (info.normalization.channels() != info.shape.channels)
      throw file_error(path.string(), "invalid checkpoint info: " + std::to_string(info.normalization.channels()) +
                                          " normalisation channels for input of " + info.shape.str());
    if (static_cast<int64_t>(info.classes.size()) != info.num_classes)
      throw file_error(path.string(), "invalid checkpoint info: " + std::to_string(info.classes.size()) +
                                          " class names for " + std::to_string(info.num_classes) + " classes");
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path.string(), std::string("invalid checkpoint info: ") + e.what());
  }
}

}  // namespace convkit::checkpoint
