#include "data/dataset_cache.h"

#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::data {
namespace {

namespace fs = std::filesystem;

constexpr const char* kMagic = "convkit-dataset-cache-1\n";
constexpr size_t kMaxHeaderBytes = size_t{64} << 20;  // class names and the skipped-files line

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325;
  for (const char c : text) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001b3;
  return h;
}

std::string key_digest(const std::string& key) {
  return strprintf("%016llx", static_cast<unsigned long long>(fnv1a(key)));
}

// The splits in the order they are stored.
std::vector<Split*> splits_of(Dataset& d) { return {&d.train, &d.valid, &d.test}; }
constexpr const char* kSplitNames[] = {"train", "valid", "test"};

bool read_exactly(std::ifstream& in, void* to, uint64_t bytes) {
  in.read(static_cast<char*>(to), static_cast<std::streamsize>(bytes));
  return in.gcount() == static_cast<std::streamsize>(bytes);
}

}  // namespace

std::string dataset_cache_key(const std::vector<fs::path>& files, const std::string& how) {
  std::string key = how + "\n";
  for (const fs::path& file : files) {
    std::error_code ec;
    const uint64_t size = fs::file_size(file, ec);
    const auto modified = fs::last_write_time(file, ec).time_since_epoch().count();
    key += fs::absolute(file, ec).string() + '\0' + std::to_string(size) + '\0' + std::to_string(modified) + '\n';
  }
  return key;
}

fs::path dataset_cache_file(const std::string& key) {
  const auto env = [](const char* name) {
    const char* v = std::getenv(name);
    return v && *v ? fs::path(v) : fs::path();
  };
  fs::path dir = env("CONVKIT_CACHE_DIR");
  if (dir.empty() && !env("XDG_CACHE_HOME").empty()) dir = env("XDG_CACHE_HOME") / "convkit";
  if (dir.empty() && !env("HOME").empty()) dir = env("HOME") / ".cache" / "convkit";
  return dir.empty() ? dir : dir / (key_digest(key) + ".bin");
}

std::optional<Dataset> read_dataset_cache(const fs::path& file, const std::string& key) {
  std::error_code ec;
  if (!fs::is_regular_file(file, ec)) return std::nullopt;
  const uint64_t file_bytes = fs::file_size(file, ec);
  std::ifstream in(file, std::ios::binary);
  std::string magic(std::char_traits<char>::length(kMagic), '\0');
  if (!in || !read_exactly(in, magic.data(), magic.size()) || magic != kMagic) return std::nullopt;
  std::string header;
  for (char c; header.size() < kMaxHeaderBytes && in.get(c) && c != '\n';) header.push_back(c);
  const nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.value("key", std::string()) != key_digest(key) ||
      j.value("key_bytes", uint64_t{0}) != key.size())
    return std::nullopt;
  Dataset d;
  try {
    d.classes = j.at("classes").get<std::vector<std::string>>();
    d.skipped = j.at("skipped").get<std::string>();
    const auto shape = j.at("shape").get<std::vector<int64_t>>();
    if (shape.size() != 3 || (shape[0] != 1 && shape[0] != 3) || shape[1] < 1 || shape[2] < 1 ||
        shape[1] > kMaxImageSide || shape[2] > kMaxImageSide || d.classes.empty())
      return std::nullopt;
    // Every count is checked against the file's size before anything is allocated.
    uint64_t expected = magic.size() + header.size() + 1;
    std::vector<int64_t> counts;
    for (const char* name : kSplitNames) {
      const int64_t n = j.at("splits").at(name).get<int64_t>();
      if (n < 0 || static_cast<uint64_t>(n) > file_bytes) return std::nullopt;
      counts.push_back(n);
      expected += static_cast<uint64_t>(n) * (static_cast<uint64_t>(shape[0] * shape[1] * shape[2]) + sizeof(int64_t));
    }
    if (expected != file_bytes) return std::nullopt;
    const std::vector<Split*> splits = splits_of(d);
    for (size_t s = 0; s < splits.size(); ++s) {
      if (counts[s] == 0 && s == 1) continue;  // no val/ folder
      Split& split = *splits[s];
      split.images = torch::empty({counts[s], shape[0], shape[1], shape[2]}, torch::kUInt8);
      split.labels = torch::empty({counts[s]}, torch::kInt64);
      if (!read_exactly(in, split.images.data_ptr(), split.images.numel()) ||
          !read_exactly(in, split.labels.data_ptr(), split.labels.numel() * sizeof(int64_t)))
        return std::nullopt;
      if (counts[s] > 0 && (split.labels.min().item<int64_t>() < 0 ||
                            split.labels.max().item<int64_t>() >= static_cast<int64_t>(d.classes.size())))
        return std::nullopt;
    }
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
  return d;
}

bool write_dataset_cache(const fs::path& file, const std::string& key, const Dataset& d) {
  nlohmann::json splits;
  Dataset copy = d;
  const std::vector<Split*> parts = splits_of(copy);
  for (size_t s = 0; s < parts.size(); ++s)
    splits[kSplitNames[s]] = parts[s]->images.defined() ? parts[s]->images.size(0) : 0;
  const ImageShape shape = d.shape();
  const nlohmann::json header = {{"key", key_digest(key)},
                                 {"key_bytes", key.size()},
                                 {"classes", d.classes},
                                 {"skipped", d.skipped},
                                 {"shape", {shape.channels, shape.height, shape.width}},
                                 {"splits", splits}};
  try {
    fs::create_directories(file.parent_path());
    write_atomically_via(file, [&](const fs::path& tmp) {
      std::ofstream out(tmp, std::ios::binary);
      out << kMagic << header.dump() << '\n';
      for (Split* split : parts) {
        if (!split->images.defined()) continue;
        const torch::Tensor images = split->images.contiguous(), labels = split->labels.contiguous();
        out.write(static_cast<const char*>(images.data_ptr()), static_cast<std::streamsize>(images.numel()));
        out.write(static_cast<const char*>(labels.data_ptr()),
                  static_cast<std::streamsize>(labels.numel() * sizeof(int64_t)));
      }
      out.close();
      if (!out) throw file_error(tmp.string(), "cannot write");
    });
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace convkit::data
