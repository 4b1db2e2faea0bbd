#include "checkpoint/state_dict.h"

#include <torch/serialize.h>
#include <torch/torch.h>

#include <map>
#include <set>
#include <sstream>

#include "checkpoint/torch_pickle.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::checkpoint {
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

}  // namespace convkit::checkpoint
