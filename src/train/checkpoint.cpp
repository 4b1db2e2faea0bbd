#include "train/checkpoint.h"

#include <torch/serialize.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "train/torch_pickle.h"
#include "util/error.h"
#include "util/files.h"

namespace convkit::train {
namespace {

std::string shape_str(at::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

}  // namespace

StateDict state_dict(const torch::nn::Module& module) {
  StateDict out;
  for (const auto& item : module.named_parameters()) out.emplace_back(item.key(), item.value().detach().cpu().clone());
  for (const auto& item : module.named_buffers()) out.emplace_back(item.key(), item.value().detach().cpu().clone());
  return out;
}

void save_state_dict(const torch::nn::Module& module, const std::filesystem::path& file) {
  c10::Dict<std::string, at::Tensor> dict;
  for (auto& [name, tensor] : state_dict(module)) dict.insert(name, tensor);
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  write_file_atomically(file, std::string(bytes.begin(), bytes.end()));
}

StateDict read_state_dict(const std::filesystem::path& file) {
  if (!std::filesystem::exists(file)) throw file_error(file.string(), "checkpoint does not exist");
  return read_torch_state_dict(file);
}

void load_state_dict(torch::nn::Module& module, const StateDict& state, const std::string& source) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : module.named_parameters()) targets.emplace(item.key(), item.value());
  for (const auto& item : module.named_buffers()) targets.emplace(item.key(), item.value());

  std::vector<std::string> unexpected, mismatched;
  std::set<std::string> seen;
  for (const auto& [name, tensor] : state) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      unexpected.push_back(name);
    } else if (it->second.sizes() != tensor.sizes()) {
      mismatched.push_back(name + " (checkpoint " + shape_str(tensor.sizes()) + ", model " +
                           shape_str(it->second.sizes()) + ")");
    }
    seen.insert(name);
  }
  std::vector<std::string> missing;
  for (const auto& [name, _] : targets)
    if (!seen.count(name)) missing.push_back(name);

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    auto join = [](const std::vector<std::string>& v) {
      std::string s;
      for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
      return s;
    };
    std::string msg = "does not fit the model:";
    if (!missing.empty()) msg += " missing keys: " + join(missing) + ";";
    if (!unexpected.empty()) msg += " unexpected keys: " + join(unexpected) + ";";
    if (!mismatched.empty()) msg += " size mismatch for " + join(mismatched) + ";";
    msg.pop_back();
    throw file_error(source, msg);
  }

  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : state) {
    torch::Tensor& target = targets.at(name);
    target.copy_(tensor.to(target.device(), target.dtype()));
  }
}

std::filesystem::path info_path_for(const std::filesystem::path& checkpoint) {
  auto p = checkpoint;
  return p.replace_extension(".json");
}

void write_checkpoint_info(const std::filesystem::path& checkpoint, const CheckpointInfo& info) {
  nlohmann::json j = {{"format", "convkit-checkpoint-1"},
                      {"model", info.model},
                      {"num_classes", info.num_classes},
                      {"normalization", {{"mean", info.mean}, {"std", info.std}}}};
  write_file_atomically(info_path_for(checkpoint), j.dump(2) + "\n");
}

std::optional<CheckpointInfo> read_checkpoint_info(const std::filesystem::path& checkpoint) {
  const auto path = info_path_for(checkpoint);
  if (!std::filesystem::exists(path)) return std::nullopt;
  const auto raw = read_file_bytes(path);
  try {
    const auto j = nlohmann::json::parse(raw.begin(), raw.end());
    CheckpointInfo info;
    info.model = j.at("model").get<std::string>();
    info.num_classes = j.at("num_classes").get<int64_t>();
    info.mean = j.at("normalization").at("mean").get<float>();
    info.std = j.at("normalization").at("std").get<float>();
    return info;
  } catch (const nlohmann::json::exception& e) {
    throw file_error(path.string(), std::string("invalid checkpoint info: ") + e.what());
  }
}

}  // namespace convkit::train
