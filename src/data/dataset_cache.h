// Decoded image folders kept on disk, so that a second run on the same tree reads one file
// instead of decoding every image again.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace convkit::data {

// What decoding depends on: every file's absolute path, size and modification time, in order, and `how`
// the files are decoded (shape asked for, limit, skipping, layout). Equal keys decode to equal
// tensors; a file added, removed, touched or rewritten changes the key.
std::string dataset_cache_key(const std::vector<std::filesystem::path>& files, const std::string& how);

// Where the cache for `key` lives: <cache folder>/<64-bit hash of the key>.bin. The folder is
// $CONVKIT_CACHE_DIR, else $XDG_CACHE_HOME/convkit, else $HOME/.cache/convkit: outside the
// dataset, which stays as torchvision's ImageFolder expects it and may be read-only. Empty when
// none of the three is set.
std::filesystem::path dataset_cache_file(const std::string& key);

// The dataset stored in `file` for `key`; nullopt when there is no such file, or it was written
// for another key, or it is not whole and well-formed in every count and size (then the caller
// decodes again and rewrites it).
std::optional<Dataset> read_dataset_cache(const std::filesystem::path& file, const std::string& key);

// Writes `d` to `file` atomically. False, leaving nothing behind, when it cannot be written (a
// read-only dataset folder, a full disk): the cache only saves time.
bool write_dataset_cache(const std::filesystem::path& file, const std::string& key, const Dataset& d);

}  // namespace convkit::data
