#include "data/image_folder.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <map>
#include <random>

#include "data/image.h"
#include "data/image_file.h"
#include "util/error.h"
#include "util/progress.h"

namespace convkit::data {
namespace {

namespace fs = std::filesystem;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool is_hidden(const fs::path& p) { return p.filename().string().rfind('.', 0) == 0; }

// The sorted names of the folders directly in `root`, hidden ones left out.
std::vector<std::string> class_folders(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw file_error(root.string(), "is not a folder");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(root)) {
    if (entry.is_directory() && !is_hidden(entry.path())) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  if (names.empty()) throw file_error(root.string(), "has no class folders (expected ROOT/<class>/<image>)");
  return names;
}

// A class folder's image files as torchvision finds them: sorted(os.walk(folder)) visits the
// folders in the order of their paths, and each folder's file names are sorted.
std::vector<fs::path> images_in(const fs::path& folder, size_t& total) {
  std::map<std::string, std::vector<std::string>> by_folder;  // ordered by the folder's path
  by_folder[folder.string()];
  fs::recursive_directory_iterator it(folder, fs::directory_options::follow_directory_symlink), end;
  for (; it != end; ++it) {
    if (is_hidden(it->path())) {
      if (it->is_directory()) it.disable_recursion_pending();
      continue;
    }
    if (it.depth() >= kMaxFolderDepth) throw file_error(it->path().string(), "is nested too deeply");
    if (it->is_directory()) {
      by_folder[it->path().string()];
    } else if (is_image_file_name(it->path().filename().string())) {
      if (++total > kMaxFolderImages)
        throw file_error(folder.parent_path().string(),
                         "holds more than " + std::to_string(kMaxFolderImages) + " images");
      by_folder[it->path().parent_path().string()].push_back(it->path().filename().string());
    }
  }
  std::vector<fs::path> files;
  for (auto& [dir, names] : by_folder) {
    std::sort(names.begin(), names.end());
    for (const auto& name : names) files.push_back(fs::path(dir) / name);
  }
  return files;
}

}  // namespace

int64_t files_to_read(const ImageFolderListing& listing, int64_t limit) {
  const auto all = static_cast<int64_t>(listing.files.size());
  return limit > 0 ? std::min(limit, all) : all;
}

bool is_image_file_name(const std::string& name) {
  static const std::array<const char*, 11> kEndings = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp", ".pgm",
                                                       ".tif", ".tiff", ".webp", ".gif", ".tga"};
  if (name.empty() || name[0] == '.') return false;
  const std::string l = lower(name);
  return std::any_of(kEndings.begin(), kEndings.end(), [&](const char* e) {
    const size_t n = std::strlen(e);
    return l.size() > n && l.compare(l.size() - n, n, e) == 0;
  });
}

ImageFolderListing list_image_folder(const fs::path& root, const std::vector<std::string>* classes) {
  ImageFolderListing listing;
  const std::vector<std::string> folders = class_folders(root);
  listing.classes = classes ? *classes : folders;
  size_t total = 0;
  for (const auto& name : folders) {
    const auto known = std::find(listing.classes.begin(), listing.classes.end(), name);
    if (known == listing.classes.end())
      throw file_error((root / name).string(), "is a class the training images do not have");
    const std::vector<fs::path> files = images_in(root / name, total);
    if (files.empty()) throw file_error((root / name).string(), "is a class folder without images");
    listing.files.insert(listing.files.end(), files.begin(), files.end());
    listing.labels.insert(listing.labels.end(), files.size(), known - listing.classes.begin());
  }
  return listing;
}

std::pair<ImageFolderListing, ImageFolderListing> split_image_folder(const ImageFolderListing& all, double test_share) {
  constexpr uint64_t kTestSplitSeed = 0x5eed7e57;
  std::mt19937_64 engine(kTestSplitSeed);
  ImageFolderListing train{all.classes, {}, {}}, test{all.classes, {}, {}};
  size_t start = 0;
  while (start < all.files.size()) {
    size_t end = start;
    while (end < all.files.size() && all.labels[end] == all.labels[start]) ++end;
    const size_t n = end - start;
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[engine() % i]);  // Fisher-Yates
    size_t tested = static_cast<size_t>(std::llround(test_share * static_cast<double>(n)));
    if (n >= 2) tested = std::clamp<size_t>(tested, 1, n - 1);
    std::vector<char> is_test(n, 0);
    for (size_t k = 0; k < tested && n >= 2; ++k) is_test[order[k]] = 1;
    for (size_t i = 0; i < n; ++i) {
      ImageFolderListing& to = is_test[i] ? test : train;
      to.files.push_back(all.files[start + i]);
      to.labels.push_back(all.labels[start + i]);
    }
    start = end;
  }
  return {train, test};
}

FolderShape survey_image_folders(const std::vector<const ImageFolderListing*>& listings, int64_t limit,
                                 const DataOptions& options) {
  std::vector<const fs::path*> files;
  for (const ImageFolderListing* listing : listings) {
    for (int64_t i = 0; i < files_to_read(*listing, limit); ++i) files.push_back(&listing->files[i]);
  }
  const auto n = static_cast<int64_t>(files.size());
  std::vector<PictureHeader> headers(n);
  std::vector<std::string> errors(n);
  at::parallel_for(0, n, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      try {
        headers[i] = read_picture_header(*files[i]);
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  });
  FolderShape found;
  found.images = n;
  int64_t first = -1;  // the first readable file, whose size the others must share
  bool colour = false;
  for (int64_t i = 0; i < n; ++i) {
    if (!errors[i].empty()) {
      if (!options.skip_bad) throw Error(errors[i]);
      continue;
    }
    colour = colour || headers[i].channels == 3;
    if (first < 0) first = i;
    if (options.height == 0 && (headers[i].width != headers[first].width || headers[i].height != headers[first].height))
      throw Error("image folders hold pictures of different sizes (" + files[first]->string() + ": " +
                  std::to_string(headers[first].height) + "x" + std::to_string(headers[first].width) + ", " +
                  files[i]->string() + ": " + std::to_string(headers[i].height) + "x" +
                  std::to_string(headers[i].width) + ", height x width): --image-size HxW resizes them to one");
  }
  found.shape.channels = options.channels > 0 ? options.channels : colour ? 3 : 1;
  if (options.height > 0) {
    found.shape.height = options.height, found.shape.width = options.width;
  } else if (first >= 0) {
    found.shape.height = headers[first].height, found.shape.width = headers[first].width;
  }
  return found;
}

DecodedFolder decode_image_folder(const ImageFolderListing& listing, ImageShape shape, int64_t limit, bool skip_bad) {
  const int64_t n = files_to_read(listing, limit);
  torch::Tensor images = torch::empty({n, shape.channels, shape.height, shape.width}, torch::kUInt8);
  std::vector<std::string> errors(n);
  std::vector<char> decoded(n, 0);  // char: threads write neighbours
  uint8_t* out = images.data_ptr<uint8_t>();
  const int64_t values = shape.values();
  constexpr int64_t kChunk = 1024;  // files decoded between two redraws of the progress bar
  Progress progress("Decoding images", n, Progress::stdout_is_terminal());
  for (int64_t start = 0; start < n; start += kChunk) {
    const int64_t stop = std::min(n, start + kChunk);
    at::parallel_for(start, stop, 1, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        try {
          const Picture image = read_picture(listing.files[i], static_cast<int>(shape.channels));
          if (image.height == shape.height && image.width == shape.width) {
            copy_planar(image, out + i * values);
          } else {
            const torch::Tensor pixels =
                resize_images(picture_tensor(image).unsqueeze(0), shape.height, shape.width).contiguous();
            std::memcpy(out + i * values, pixels.data_ptr<uint8_t>(), values);
          }
          decoded[i] = 1;
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      }
    });
    for (int64_t i = start; i < stop; ++i)
      if (!decoded[i] && !skip_bad) throw Error(errors[i]);
    progress.advance(stop - start);
  }
  progress.finish();
  DecodedFolder result;
  std::vector<int64_t> kept, labels;
  for (int64_t i = 0; i < n; ++i) {
    if (decoded[i]) {
      kept.push_back(i);
      labels.push_back(listing.labels[i]);
    } else if (result.skipped++ == 0) {
      result.first_skipped = errors[i];
    }
  }
  result.split = {result.skipped ? images.index_select(0, torch::tensor(kept, torch::kInt64)) : images,
                  torch::tensor(labels, torch::kInt64)};
  if (n > 0 && kept.empty())
    throw Error("none of the " + std::to_string(n) +
                " image files could be decoded (the first: " + result.first_skipped + ")");
  return result;
}

}  // namespace convkit::data
