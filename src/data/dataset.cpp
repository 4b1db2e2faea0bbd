#include "data/dataset.h"

#include <torch/torch.h>

#include <cstring>
#include <fstream>

#include <unistd.h>

#include <regex>

#include "data/cifar.h"
#include "data/dataset_cache.h"
#include "data/idx.h"
#include "data/image_file.h"
#include "data/image_folder.h"
#include "util/error.h"
#include "util/files.h"
#include "util/format.h"

namespace convkit::data {
namespace {

namespace fs = std::filesystem;

// FNV-1a of FashionMNIST's 10,000 test labels: how its IDX files are told from MNIST's and others'.
constexpr uint64_t kFashionMnistTestLabelsHash = 0x25bdf8123f06fac3;

uint64_t fnv1a(const torch::Tensor& labels) {
  uint64_t h = 0xcbf29ce484222325;
  const int64_t* l = labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < labels.numel(); ++i) h = (h ^ static_cast<uint64_t>(l[i])) * 0x100000001b3;
  return h;
}

// The labels' reach: one more than the largest label of either split, so that a class the
// training images happen to lack still has its output.
int64_t class_count_of(const torch::Tensor& train_labels, const torch::Tensor& test_labels) {
  int64_t count = 0;
  for (const auto& labels : {train_labels, test_labels})
    if (labels.defined() && labels.numel() > 0) count = std::max(count, labels.max().item<int64_t>() + 1);
  return count;
}

// The names of an IDX dataset's classes, `count` of them at least (the labels' reach).
std::vector<std::string> idx_class_names(const fs::path& dir, int64_t count, const torch::Tensor& full_test_labels) {
  if (fs::exists(dir / "classes.txt")) {
    std::vector<std::string> names = read_class_names(dir / "classes.txt");
    if (static_cast<int64_t>(names.size()) < count)
      throw file_error(
          (dir / "classes.txt").string(),
          "has " + std::to_string(names.size()) + " class names, but the labels go up to " + std::to_string(count - 1));
    return names;
  }
  if (count <= kNumClasses && full_test_labels.numel() == 10000 &&
      fnv1a(full_test_labels) == kFashionMnistTestLabelsHash)
    return class_names();
  std::vector<std::string> digits;
  for (int64_t k = 0; k < count; ++k) digits.push_back(std::to_string(k));
  return digits;
}

bool has_idx_file(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  return fs::exists(dir / stem, ec) || fs::exists(dir / (stem + ".gz"), ec);
}

torch::Tensor read_labels(const fs::path& file) {
  IdxArray labels = read_idx(file, kIdxLabelsMagic);
  return torch::from_blob(labels.bytes.data(), {labels.dims[0]}, torch::kUInt8).to(torch::kInt64);
}

Dataset load_idx_dataset(const fs::path& dir, int64_t limit, bool with_train) {
  Dataset d;
  const Split test = load_split(dir, kTestFiles);
  // The labels set the class count; evaluation reads the training labels only, and can do
  // without them (a folder holding just the test files).
  torch::Tensor train_labels;
  if (with_train) {
    d.train = load_split(dir, kTrainFiles);
    train_labels = d.train.labels;
    if (d.train.images.sizes().slice(1) != test.images.sizes().slice(1))
      throw file_error(find_idx_file(dir, kTestFiles.images).string(),
                       "images are " + std::to_string(test.images.size(2)) + "x" + std::to_string(test.images.size(3)) +
                           ", the training images " + std::to_string(d.train.images.size(2)) + "x" +
                           std::to_string(d.train.images.size(3)));
  } else if (has_idx_file(dir, kTrainFiles.labels)) {
    train_labels = read_labels(find_idx_file(dir, kTrainFiles.labels));
  }
  d.classes = idx_class_names(dir, class_count_of(train_labels, test.labels), test.labels);
  if (with_train && limit > 0) d.train = first(d.train, limit);
  d.test = limit > 0 ? first(test, limit) : test;
  return d;
}

void note_skipped(const DecodedFolder& decoded, const char* split, Dataset& d) {
  if (decoded.skipped == 0) return;
  d.skipped += (d.skipped.empty() ? "Skipped " : "; ") + std::to_string(decoded.skipped) + " " + split +
               " image files that cannot be decoded (the first: " + decoded.first_skipped + ")";
}

uint64_t half_the_machines_memory() {
  return static_cast<uint64_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<uint64_t>(sysconf(_SC_PAGE_SIZE)) / 2;
}

// Each value is held as a uint8 pixel and, once normalised, as a float of the model's input.
constexpr uint64_t kBytesPerValue = 1 + sizeof(float);

void check_memory(const fs::path& dir, int64_t images, ImageShape shape, uint64_t budget) {
  if (budget == 0) budget = half_the_machines_memory();
  const uint64_t need = static_cast<uint64_t>(images) * static_cast<uint64_t>(shape.values()) * kBytesPerValue;
  if (need > budget)
    throw file_error(dir.string(),
                     strprintf("%lld images of %s need about %.1f GiB in memory (as uint8 pixels and "
                               "float input), over the budget of %.1f GiB (--max-memory MiB)",
                               static_cast<long long>(images), shape.str().c_str(),
                               static_cast<double>(need) / (1 << 30), static_cast<double>(budget) / (1 << 30)));
}

bool is_folder(const fs::path& path) {
  std::error_code ec;
  return fs::is_directory(path, ec);
}

// The listings of a tree's splits (train, val, test; an empty listing for a split that is not
// read): train/, val/ and test/ folders, or one tree split by `options.test_split`.
std::vector<ImageFolderListing> list_folder_splits(const fs::path& dir, bool with_train, const DataOptions& options) {
  if (!is_folder(dir / "train")) {
    if (!(options.test_split > 0 && options.test_split < 1))
      throw Error("--test-split: must be between 0 and 1 (the share of each class tested)");
    auto [train, test] = split_image_folder(list_image_folder(dir), options.test_split);
    if (!with_train) train.files.clear(), train.labels.clear();
    return {train, ImageFolderListing{train.classes, {}, {}}, test};
  }
  ImageFolderListing train = list_image_folder(dir / "train");
  if (!is_folder(dir / "test"))
    throw file_error((dir / "test").string(),
                     "is missing: image folders need train/<class>/ and test/<class>/ (or one tree DIR/<class>/)");
  ImageFolderListing test = list_image_folder(dir / "test", &train.classes);
  ImageFolderListing val{train.classes, {}, {}};
  if (with_train && is_folder(dir / "val")) val = list_image_folder(dir / "val", &train.classes);
  if (!with_train) train.files.clear(), train.labels.clear();
  return {train, val, test};
}

// How the files are decoded, for the cache's key.
std::string decoding_of(int64_t limit, const DataOptions& o) {
  return strprintf("channels %lld size %lldx%lld limit %lld skip_bad %d test_split %.17g",
                   static_cast<long long>(o.channels), static_cast<long long>(o.height),
                   static_cast<long long>(o.width), static_cast<long long>(limit), o.skip_bad ? 1 : 0, o.test_split);
}

Dataset load_folder_dataset(const fs::path& dir, int64_t limit, bool with_train, const DataOptions& options) {
  const std::vector<ImageFolderListing> listings = list_folder_splits(dir, with_train, options);
  std::vector<fs::path> files;
  for (const ImageFolderListing& l : listings) {
    files.insert(files.end(), l.files.begin(), l.files.begin() + files_to_read(l, limit));
  }
  const std::string key = dataset_cache_key(files, decoding_of(limit, options));
  const fs::path cache = dataset_cache_file(key);
  if (options.cache && !cache.empty()) {
    if (std::optional<Dataset> cached = read_dataset_cache(cache, key)) {
      const int64_t images = cached->train.images.size(0) + cached->test.images.size(0) +
                             (cached->valid.images.defined() ? cached->valid.images.size(0) : 0);
      check_memory(dir, images, cached->shape(), options.max_memory);
      return *cached;
    }
  }
  std::vector<const ImageFolderListing*> surveyed;
  for (const ImageFolderListing& l : listings) surveyed.push_back(&l);
  const FolderShape found = survey_image_folders(surveyed, limit, options);
  check_memory(dir, found.images, found.shape, options.max_memory);
  Dataset d;
  d.classes = listings[0].classes;
  const char* names[] = {"training", "validation", "test"};
  Split* splits[] = {&d.train, &d.valid, &d.test};
  for (size_t s = 0; s < listings.size(); ++s) {
    if (s == 1 && listings[s].files.empty()) continue;  // no val/ folder
    const DecodedFolder decoded = decode_image_folder(listings[s], found.shape, limit, options.skip_bad);
    *splits[s] = decoded.split;
    note_skipped(decoded, names[s], d);
  }
  if (options.cache && options.write_cache && !cache.empty())
    write_dataset_cache(cache, key, d);  // unwritable: decoded each time
  return d;
}

enum class Format { Idx, Folder, Cifar };

// Whether `dir` holds at least one folder that is not hidden: a tree DIR/<class>/....
bool has_class_folders(const fs::path& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_directory(ec) && it->path().filename().string().rfind('.', 0) != 0) return true;
  return false;
}

Format format_of(const fs::path& dir, const DataOptions& options) {
  if (options.format == "idx") return Format::Idx;
  if (options.format == "folder") return Format::Folder;
  if (options.format == "cifar") return Format::Cifar;
  if (!options.format.empty()) throw Error("--dataset: unknown format '" + options.format + "' (idx, folder or cifar)");
  std::error_code ec;
  if (has_idx_file(dir, kTrainFiles.images) || has_idx_file(dir, kTestFiles.images)) return Format::Idx;
  if (is_cifar_dataset(dir)) return Format::Cifar;
  if (fs::is_directory(dir / "train", ec)) return Format::Folder;
  if (!fs::exists(dir, ec)) throw file_error(dir.string(), "data directory does not exist (--data)");
  if (has_class_folders(dir)) return Format::Folder;  // one tree, split by --test-split
  throw file_error(dir.string(), std::string("holds no dataset: neither IDX files (") + kTrainFiles.images + "[.gz], " +
                                     kTestFiles.images +
                                     "[.gz], ...), nor image folders (train/<class>/, test/<class>/), nor CIFAR "
                                     "binary files (data_batch_1.bin ... test_batch.bin, or train.bin and test.bin)");
}

// The images as `options` asks for them: its channels and size.
void conform(Dataset& d, const DataOptions& options) {
  for (Split* s : {&d.train, &d.test}) {
    if (!s->images.defined()) continue;
    if (options.channels > 0) s->images = convert_channels(s->images, options.channels);
    if (options.height > 0) s->images = resize_images(s->images, options.height, options.width);
  }
}

Dataset load(const fs::path& dir, int64_t limit, bool with_train, const DataOptions& options) {
  Dataset d;
  switch (format_of(dir, options)) {
    case Format::Idx:
      d = load_idx_dataset(dir, limit, with_train);
      break;
    case Format::Cifar:
      d = load_cifar(dir, limit, with_train, options.coarse_labels ? CifarLabel::Coarse : CifarLabel::Fine);
      break;
    case Format::Folder:
      return load_folder_dataset(dir, limit, with_train, options);  // decoded to the shape asked for
  }
  const int64_t images = (d.train.images.defined() ? d.train.images.size(0) : 0) + d.test.images.size(0);
  ImageShape shape = d.shape();
  if (options.channels > 0) shape.channels = options.channels;
  if (options.height > 0) shape.height = options.height, shape.width = options.width;
  check_memory(dir, images, shape, options.max_memory);
  conform(d, options);
  return d;
}

}  // namespace

std::string ImageShape::str() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

ImageShape Dataset::shape() const {
  const torch::Tensor& images = train.images.defined() ? train.images : test.images;
  return {images.size(1), images.size(2), images.size(3)};
}

std::vector<std::string> class_names() { return {kClassNames.begin(), kClassNames.end()}; }

bool is_image_folder_dataset(const fs::path& dir, const DataOptions& options) {
  return format_of(dir, options) == Format::Folder;
}

Dataset load_dataset(const fs::path& dir, int64_t limit, const DataOptions& options) {
  return load(dir, limit, true, options);
}

Dataset load_test_set(const fs::path& dir, int64_t limit, const DataOptions& options) {
  return load(dir, limit, false, options);
}

std::vector<std::string> read_class_names(const fs::path& file) {
  const std::vector<uint8_t> bytes = read_file_bytes(file, uint64_t{1} << 20);
  std::vector<std::string> names;
  std::string line;
  for (const uint8_t b : bytes) {
    if (b == '\n') {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      names.push_back(line);
      line.clear();
    } else {
      line.push_back(static_cast<char>(b));
    }
  }
  if (!line.empty()) names.push_back(line);
  while (!names.empty() && names.back().empty()) names.pop_back();  // CIFAR's names files end in blank lines
  if (names.empty()) throw file_error(file.string(), "has no class names (one a line)");
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i].empty()) throw file_error(file.string(), "line " + std::to_string(i + 1) + " has no class name");
  return names;
}

std::pair<int64_t, int64_t> parse_image_size(const std::string& text, const std::string& source) {
  static const std::regex size(R"((\d{1,9})x(\d{1,9}))");
  std::smatch m;
  if (std::regex_match(text, m, size)) {
    const int64_t h = std::stoll(m[1]), w = std::stoll(m[2]);
    if (h >= 1 && w >= 1 && h <= kMaxImageSide && w <= kMaxImageSide) return {h, w};
  }
  throw Error(source + ": '" + text + "' is not HEIGHTxWIDTH (e.g. 32x32, each 1-" + std::to_string(kMaxImageSide) +
              ")");
}

torch::Tensor convert_channels(const torch::Tensor& images, int64_t channels) {
  const int64_t have = images.size(1);
  if (have == channels) return images;
  if (channels == 3 && have == 1) return images.repeat({1, 3, 1, 1});
  if (channels == 1 && have == 3) {
    const torch::Tensor x = images.to(torch::kInt64);  // grey_from_rgb on every pixel
    const auto weight = [](uint32_t w) { return static_cast<int64_t>(w); };
    const torch::Tensor grey = (x.select(1, 0) * weight(kLumaRed) + x.select(1, 1) * weight(kLumaGreen) +
                                x.select(1, 2) * weight(kLumaBlue) + weight(kLumaRounding))
                                   .div(65536, "floor");
    return grey.to(torch::kUInt8).unsqueeze(1).contiguous();
  }
  throw Error("--channels: cannot convert images of " + std::to_string(have) + " channels to " +
              std::to_string(channels));
}

torch::Tensor resize_images(const torch::Tensor& images, int64_t height, int64_t width) {
  if (images.size(2) == height && images.size(3) == width) return images;
  namespace F = torch::nn::functional;
  const auto options = F::InterpolateFuncOptions()
                           .size(std::vector<int64_t>{height, width})
                           .mode(torch::kBilinear)
                           .align_corners(false)
                           .antialias(true);
  torch::Tensor out = torch::empty({images.size(0), images.size(1), height, width}, torch::kUInt8);
  constexpr int64_t kChunk = 1024;  // images converted to float at a time, to bound memory
  for (int64_t start = 0; start < images.size(0); start += kChunk) {
    const int64_t stop = std::min(images.size(0), start + kChunk);
    out.slice(0, start, stop)
        .copy_(F::interpolate(images.slice(0, start, stop).to(torch::kFloat), options).round().clamp(0, 255));
  }
  return out;
}

Split load_split(const fs::path& dir, IdxStems stems, int64_t limit) {
  const auto images_file = find_idx_file(dir, stems.images);
  const auto labels_file = find_idx_file(dir, stems.labels);
  IdxArray images = read_idx(images_file, kIdxImagesMagic);
  IdxArray labels = read_idx(labels_file, kIdxLabelsMagic);

  if (images.dims[0] != labels.dims[0]) {
    throw file_error(labels_file.string(), "has " + std::to_string(labels.dims[0]) + " labels but " +
                                               images_file.filename().string() + " has " +
                                               std::to_string(images.dims[0]) + " images");
  }

  const int64_t n = limit > 0 ? std::min(images.dims[0], limit) : images.dims[0];
  Split split;
  split.images =
      torch::from_blob(images.bytes.data(), {images.dims[0], 1, images.dims[1], images.dims[2]}, torch::kUInt8)
          .slice(0, 0, n)
          .clone();
  split.labels =
      torch::from_blob(labels.bytes.data(), {labels.dims[0]}, torch::kUInt8).slice(0, 0, n).to(torch::kInt64);
  return split;
}

Split concatenate(const std::vector<Split>& parts) {
  std::vector<torch::Tensor> images, labels;
  for (const Split& s : parts) {
    images.push_back(s.images);
    labels.push_back(s.labels);
  }
  return {torch::cat(images), torch::cat(labels)};
}

Split first(const Split& split, int64_t n) {
  n = std::min(n, split.images.size(0));
  return {split.images.slice(0, 0, n), split.labels.slice(0, 0, n)};
}

namespace {

// FNV-1a's constants over 8-byte words (the tail byte by byte): fast enough for 50 MB at start-up.
uint64_t hash_bytes(const uint8_t* p, size_t n, uint64_t h) {
  constexpr uint64_t kPrime = 0x100000001b3ULL;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t word;
    std::memcpy(&word, p + i, 8);
    h = (h ^ word) * kPrime;
  }
  for (; i < n; ++i) h = (h ^ p[i]) * kPrime;
  return (h ^ n) * kPrime;
}

uint64_t hash_tensor(const torch::Tensor& t, uint64_t h) {
  if (!t.defined()) return hash_bytes(nullptr, 0, h);
  const torch::Tensor c = t.contiguous();
  return hash_bytes(static_cast<const uint8_t*>(c.data_ptr()), c.numel() * c.element_size(), h);
}

}  // namespace

uint64_t fingerprint(const Dataset& d) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const Split* s : {&d.train, &d.valid, &d.test}) h = hash_tensor(s->labels, hash_tensor(s->images, h));
  for (const std::string& name : d.classes)
    h = hash_bytes(reinterpret_cast<const uint8_t*>(name.data()), name.size(), h);
  return h;
}

}  // namespace convkit::data
