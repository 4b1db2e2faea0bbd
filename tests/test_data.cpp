#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <fstream>

#include "data/batches.h"
#include "data/cifar.h"
#include "data/dataset.h"
#include "data/idx.h"
#include "data/image_file.h"
#include "data/image_folder.h"
#include "data/normalization.h"
#include "data/split.h"
#include "data/transforms.h"
#include "test_util.h"
#include "util/error.h"
#include "util/files.h"

using namespace convkit;
using convkit::testing::TempDir;
using convkit::testing::write_synthetic_mnist;

namespace {

// Expects `fn` to throw a convkit::Error whose message names `file` and contains `reason`.
template <typename Fn>
void expect_error(Fn fn, const std::string& file, const std::string& reason) {
  try {
    fn();
    FAIL() << "expected an error mentioning " << reason;
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(file), std::string::npos) << what;
    EXPECT_NE(what.find(reason), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << "error must be one line: " << what;
  }
}

void write_bytes(const std::filesystem::path& file, const std::vector<uint8_t>& bytes) {
  std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::vector<uint8_t> labels_bytes(int n) {
  std::vector<uint8_t> v(n);
  for (int i = 0; i < n; ++i) v[i] = i % 10;
  return v;
}

}  // namespace

TEST(Idx, ReadsRawAndGzipIdentically) {
  TempDir dir;
  std::vector<uint8_t> pixels(3 * 28 * 28);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  data::write_idx(dir / "a", data::kIdxImagesMagic, {3, 28, 28}, pixels);
  data::write_idx(dir / "b.gz", data::kIdxImagesMagic, {3, 28, 28}, pixels);
  for (const auto& name : {"a", "b.gz"}) {
    const auto arr = data::read_idx(dir / name, data::kIdxImagesMagic);
    EXPECT_EQ(arr.dims, (std::vector<int64_t>{3, 28, 28}));
    EXPECT_EQ(arr.bytes, pixels);
  }
}

TEST(Idx, WrongMagic) {
  TempDir dir;
  data::write_idx(dir / "labels", data::kIdxLabelsMagic, {10}, labels_bytes(10));
  expect_error([&] { data::read_idx(dir / "labels", data::kIdxImagesMagic); }, "labels", "wrong IDX magic 2049");
}

TEST(Idx, TruncatedData) {
  TempDir dir;
  data::write_idx(dir / "l", data::kIdxLabelsMagic, {10}, labels_bytes(10));
  auto bytes = read_file_bytes(dir / "l");
  bytes.resize(bytes.size() - 3);
  write_bytes(dir / "l", bytes);
  expect_error([&] { data::read_idx(dir / "l", data::kIdxLabelsMagic); }, "l", "truncated: header declares 10");
}

TEST(Idx, TrailingBytes) {
  TempDir dir;
  data::write_idx(dir / "l", data::kIdxLabelsMagic, {10}, labels_bytes(10));
  auto bytes = read_file_bytes(dir / "l");
  bytes.push_back(1);
  bytes.push_back(2);
  write_bytes(dir / "l", bytes);
  expect_error([&] { data::read_idx(dir / "l", data::kIdxLabelsMagic); }, "l", "2 trailing bytes");
}

TEST(Idx, ShortHeaderAndZeroDimension) {
  TempDir dir;
  write_bytes(dir / "tiny", {0, 0});
  expect_error([&] { data::read_idx(dir / "tiny", data::kIdxLabelsMagic); }, "tiny", "too short");
  write_bytes(dir / "hdr", {0, 0, 8, 3, 0, 0, 0, 1});
  expect_error([&] { data::read_idx(dir / "hdr", data::kIdxImagesMagic); }, "hdr", "truncated IDX header");
  data::write_idx(dir / "zero", data::kIdxLabelsMagic, {0}, {});
  expect_error([&] { data::read_idx(dir / "zero", data::kIdxLabelsMagic); }, "zero", "dimension 0 is zero");
}

TEST(Idx, CorruptGzip) {
  TempDir dir;
  std::vector<uint8_t> pixels(50 * 784, 3);
  data::write_idx(dir / "x.gz", data::kIdxImagesMagic, {50, 28, 28}, pixels);
  auto bytes = read_file_bytes(dir / "x.gz");
  for (size_t i = 12; i < bytes.size() - 8; i += 3) bytes[i] ^= 0x5a;
  write_bytes(dir / "x.gz", bytes);
  expect_error([&] { data::read_idx(dir / "x.gz", data::kIdxImagesMagic); }, "x.gz", "corrupt gzip data");
}

TEST(Idx, TruncatedGzip) {
  TempDir dir;
  std::vector<uint8_t> pixels(50 * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 31) ^ (i >> 3));
  data::write_idx(dir / "x.gz", data::kIdxImagesMagic, {50, 28, 28}, pixels);
  auto bytes = read_file_bytes(dir / "x.gz");
  bytes.resize(bytes.size() / 2);
  write_bytes(dir / "x.gz", bytes);
  expect_error([&] { data::read_idx(dir / "x.gz", data::kIdxImagesMagic); }, "x.gz", "truncated gzip stream");
}

TEST(Idx, MissingFileAndDirectory) {
  TempDir dir;
  expect_error([&] { data::find_idx_file(dir / "nowhere", "train-images-idx3-ubyte"); }, "nowhere",
               "data directory does not exist");
  expect_error([&] { data::find_idx_file(dir.path(), "train-images-idx3-ubyte"); }, "train-images-idx3-ubyte",
               "missing");
}

TEST(Dataset, LoadsSyntheticMnistRawAndGzip) {
  for (bool gz : {false, true}) {
    TempDir dir;
    write_synthetic_mnist(dir.path(), 100, 40, gz);
    const auto m = data::load_dataset(dir.path());
    EXPECT_EQ(m.train.images.sizes(), (std::vector<int64_t>{100, 1, 28, 28}));
    EXPECT_EQ(m.test.labels.size(0), 40);
    EXPECT_EQ(m.train.labels.dtype(), torch::kInt64);
    const auto limited = data::load_dataset(dir.path(), 25);
    EXPECT_EQ(limited.train.images.size(0), 25);
    EXPECT_TRUE(limited.train.labels.equal(m.train.labels.slice(0, 0, 25)));
  }
}

TEST(Dataset, ClassesComeFromTheLabelsOrClassesTxt) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  auto ys = labels_bytes(20);
  const int64_t reach = *std::max_element(ys.begin(), ys.end()) + 1;
  EXPECT_EQ(data::load_dataset(dir.path()).classes.size(), static_cast<size_t>(reach));
  EXPECT_EQ(data::load_dataset(dir.path()).classes[0], "0");  // not FashionMNIST's: the labels' digits
  ys[13] = 12;
  data::write_idx(dir / "train-labels-idx1-ubyte", data::kIdxLabelsMagic, {20}, ys);
  EXPECT_EQ(data::load_dataset(dir.path()).classes.size(), 13u);  // e.g. EMNIST's 26 or 47 classes
  EXPECT_EQ(data::load_dataset(dir.path()).classes.back(), "12");
  // Test labels the training labels do not reach still count.
  data::write_idx(dir / "train-labels-idx1-ubyte", data::kIdxLabelsMagic, {20}, std::vector<uint8_t>(20, 1));
  EXPECT_EQ(data::load_dataset(dir.path()).classes.size(), static_cast<size_t>(reach));
  write_file_atomically(dir / "classes.txt", "zero\none\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\n");
  const auto named = data::load_test_set(dir.path());
  EXPECT_EQ(named.classes.size(), 10u);
  EXPECT_EQ(named.classes[9], "nine");
  EXPECT_FALSE(named.train.images.defined());  // the test set alone
  write_file_atomically(dir / "classes.txt", "zero\r\none\r\n");
  expect_error([&] { data::load_dataset(dir.path()); }, "classes.txt", "has 2 class names, but the labels go up to");
  write_file_atomically(dir / "classes.txt", "zero\n\ntwo\n");
  expect_error([&] { data::load_dataset(dir.path()); }, "classes.txt", "line 2 has no class name");
}

TEST(Dataset, CountMismatch) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  data::write_idx(dir / "t10k-labels-idx1-ubyte", data::kIdxLabelsMagic, {19}, labels_bytes(19));
  expect_error([&] { data::load_dataset(dir.path()); }, "t10k-labels-idx1-ubyte", "has 19 labels but");
}

TEST(Dataset, IdxImagesOfAnySizeAndTrainTestDisagreement) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  data::write_idx(dir / "train-images-idx3-ubyte", data::kIdxImagesMagic, {20, 32, 32},
                  std::vector<uint8_t>(20 * 32 * 32));
  expect_error([&] { data::load_dataset(dir.path()); }, "t10k-images-idx3-ubyte",
               "images are 28x28, the training images 32x32");
  data::write_idx(dir / "t10k-images-idx3-ubyte", data::kIdxImagesMagic, {20, 32, 32},
                  std::vector<uint8_t>(20 * 32 * 32, 9));
  const data::Dataset d = data::load_dataset(dir.path());
  EXPECT_EQ(d.shape(), (data::ImageShape{1, 32, 32}));
  EXPECT_EQ(d.test.images.sizes(), (std::vector<int64_t>{20, 1, 32, 32}));
  // Converted on request: grey to RGB, and resized.
  data::DataOptions options;
  options.channels = 3;
  options.height = 16, options.width = 24;
  const data::Dataset converted = data::load_dataset(dir.path(), 0, options);
  EXPECT_EQ(converted.shape(), (data::ImageShape{3, 16, 24}));
  EXPECT_EQ(converted.test.images.min().item<int64_t>(), 9);
  EXPECT_EQ(converted.test.images.max().item<int64_t>(), 9);
}

TEST(Dataset, NormalisationMatchesDefinition) {
  const auto images = torch::randint(0, 256, {50, 1, 28, 28}, torch::kUInt8);
  const auto norm = data::normalization_from(images);
  const auto d = images.to(torch::kDouble) / 255;
  EXPECT_NEAR(norm.mean.at(0), d.mean().item<double>(), 1e-6);
  EXPECT_NEAR(norm.std.at(0), d.std().item<double>(), 1e-6);  // unbiased, as torch's std()
  // The tutorial's expression, to the bit: data.float().mean() / 255 over the whole tensor.
  EXPECT_EQ(norm.mean[0], (images.to(torch::kFloat).mean() / 255).item<float>());
  EXPECT_EQ(norm.std[0], (images.to(torch::kFloat).std() / 255).item<float>());
  const auto x = data::to_model_input(images, norm);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{50, 1, 28, 28}));
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 1e-4);
  EXPECT_EQ(norm.str().rfind("mean 0.", 0), 0u) << norm.str();
}

TEST(Dataset, NormalisationPerChannel) {
  torch::manual_seed(3);
  // Three channels of different brightness and spread.
  const auto images = torch::stack({torch::randint(0, 80, {40, 8, 8}), torch::randint(100, 256, {40, 8, 8}),
                                    torch::randint(0, 256, {40, 8, 8})},
                                   1)
                          .to(torch::kUInt8);
  const auto norm = data::normalization_from(images);
  ASSERT_EQ(norm.channels(), 3);
  for (int64_t c = 0; c < 3; ++c) {
    const auto d = images.select(1, c).to(torch::kDouble) / 255;
    EXPECT_NEAR(norm.mean[c], d.mean().item<double>(), 1e-6);
    EXPECT_NEAR(norm.std[c], d.std().item<double>(), 1e-6);
  }
  const auto x = data::to_model_input(images, norm);
  for (int64_t c = 0; c < 3; ++c) {
    EXPECT_NEAR(x.select(1, c).mean().item<double>(), 0.0, 1e-4);
    EXPECT_NEAR(x.select(1, c).std().item<double>(), 1.0, 1e-4);
  }
  // Black, normalised, per channel: what augmentation fills with.
  const auto black = data::normalized_black(norm);
  EXPECT_EQ(black.sizes(), (std::vector<int64_t>{1, 3, 1, 1}));
  EXPECT_NEAR(black[0][1][0][0].item<double>(), -norm.mean[1] / norm.std[1], 1e-6);
  EXPECT_NE(norm.str().find("mean ("), std::string::npos) << norm.str();
}

TEST(Dataset, ChannelsConvertAsPilDoes) {
  // PIL's convert("L") of an RGB pixel: (R * 19595 + G * 38470 + B * 7471 + 0x8000) >> 16.
  const auto rgb = torch::tensor({255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30}, torch::kUInt8).view({4, 3, 1, 1});
  const auto grey = data::convert_channels(rgb.permute({3, 1, 0, 2}).contiguous().view({1, 3, 4, 1}), 1);
  const std::vector<int64_t> expected = {76, 150, 29, (10 * 19595 + 200 * 38470 + 30 * 7471 + 0x8000) >> 16};
  const auto got = grey.to(torch::kInt64).flatten();
  EXPECT_EQ(std::vector<int64_t>(got.data_ptr<int64_t>(), got.data_ptr<int64_t>() + 4), expected);
  EXPECT_TRUE(data::convert_channels(grey, 3).select(1, 2).equal(grey.select(1, 0)));
  expect_error(
      [&] {
        data::convert_channels(torch::zeros({1, 2, 1, 1}, torch::kUInt8), 3);
      },
      "--channels", "cannot convert images of 2 channels");
}

TEST(Dataset, ImageSizesAreParsedAndBounded) {
  EXPECT_EQ(data::parse_image_size("32x24", "--image-size"), (std::pair<int64_t, int64_t>{32, 24}));
  for (const char* bad : {"32", "0x5", "5x0", "32x", "x32", "-1x5", "5000x5", "1.5x2", "32x32 "})
    expect_error([&] { data::parse_image_size(bad, "--image-size"); }, "--image-size", "is not HEIGHTxWIDTH");
}

TEST(Dataset, LargeInputsOnHugePagesHoldTheSameValues) {
  // 12,000 images (36 MB of floats) take the 2 MB-aligned allocation; slices of 100 the plain one.
  torch::manual_seed(29);
  const auto images = torch::randint(0, 256, {12000, 1, 28, 28}, torch::kUInt8);
  const data::Normalization norm{{0.2860f}, {0.3530f}};
  const torch::Tensor whole = data::to_model_input(images, norm);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(whole.data_ptr()) % (2u << 20), 0u);
  for (int64_t start : {0, 5900, 11900}) {
    EXPECT_TRUE(
        whole.slice(0, start, start + 100).equal(data::to_model_input(images.slice(0, start, start + 100), norm)));
  }
  const torch::Tensor floats = images.to(torch::kFloat);
  data::to_model_input(floats, norm);
  EXPECT_TRUE(floats.equal(images.to(torch::kFloat))) << "the caller's float pixels are left alone";
}

TEST(Dataset, RandomSplitIsSeededPartition) {
  torch::manual_seed(1234);
  const auto a = data::random_split(1000);
  torch::manual_seed(1234);
  const auto b = data::random_split(1000);
  EXPECT_EQ(a.train.size(0), 900);
  EXPECT_EQ(a.valid.size(0), 100);
  EXPECT_TRUE(a.train.equal(b.train));
  const auto all = std::get<0>(torch::cat({a.train, a.valid}).sort());
  EXPECT_TRUE(all.equal(torch::arange(1000)));
  torch::manual_seed(99);
  EXPECT_FALSE(data::random_split(1000).train.equal(a.train));
}

TEST(Dataset, GatherRowsIsIndexSelect) {
  const torch::Tensor images = torch::randn({50, 1, 28, 28});
  const torch::Tensor labels = torch::randint(0, 10, {50}, torch::kLong);
  const torch::Tensor index = torch::tensor({49, 0, 7, 7, 13}, torch::kLong);
  EXPECT_TRUE(data::gather_rows(images, index).equal(images.index_select(0, index)));
  EXPECT_TRUE(data::gather_rows(labels, index).equal(labels.index_select(0, index)));
  EXPECT_TRUE(data::gather_rows(labels, index.slice(0, 1, 3)).equal(labels.index_select(0, index.slice(0, 1, 3))));
  const torch::Tensor strided = images.transpose(2, 3);  // not contiguous: index_select's path
  EXPECT_TRUE(data::gather_rows(strided, index).equal(strided.index_select(0, index)));
  EXPECT_THROW(data::gather_rows(labels, torch::tensor({50}, torch::kLong)), c10::Error);
  EXPECT_THROW(data::gather_rows(labels, torch::tensor({-1}, torch::kLong)), c10::Error);
}

TEST(Rotation, ZeroDegreesIsIdentity) {
  const auto x = torch::randint(0, 256, {4, 1, 28, 28}).to(torch::kFloat);
  EXPECT_TRUE(data::rotate(x, torch::zeros({4})).equal(x));
}

TEST(Rotation, NinetyDegreesTurnsCounterClockwise) {
  // A bar along the top-left edge: rows 2..3, columns 2..9.
  auto x = torch::zeros({1, 1, 28, 28});
  x.index_put_({0, 0, torch::indexing::Slice(2, 4), torch::indexing::Slice(2, 10)}, 200.f);
  const auto r = data::rotate(x, torch::full({1}, 90.0));
  // Counter-clockwise on screen: the top edge becomes the left edge; pixel (row, col) goes to
  // (27 - col, row).
  auto expected = torch::zeros({1, 1, 28, 28});
  expected.index_put_({0, 0, torch::indexing::Slice(18, 26), torch::indexing::Slice(2, 4)}, 200.f);
  EXPECT_TRUE(r.equal(expected)) << r.nonzero();
  // Four quarter turns give the image back.
  auto back = x;
  for (int i = 0; i < 4; ++i) back = data::rotate(back, torch::full({1}, 90.0));
  EXPECT_TRUE(back.equal(x));
}

TEST(Rotation, CornersAreFilledWithZero) {
  const auto x = torch::full({2, 1, 28, 28}, 255.f);
  const auto r = data::rotate(x, torch::tensor({45.0, -30.0}));
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(r[i][0][0][0].item<float>(), 0.f);
    EXPECT_EQ(r[i][0][27][27].item<float>(), 0.f);
    EXPECT_EQ(r[i][0][14][14].item<float>(), 255.f);
  }
  // Nearest neighbour: no new values appear.
  EXPECT_TRUE(((r == 0) | (r == 255)).all().item<bool>());
}

TEST(Rotation, EachImageGetsItsOwnAngle) {
  const auto x = torch::randint(0, 256, {1, 1, 28, 28}).to(torch::kFloat).repeat({2, 1, 1, 1});
  const auto r = data::rotate(x, torch::tensor({0.0, 90.0}));
  EXPECT_TRUE(r[0].equal(x[0]));
  EXPECT_FALSE(r[1].equal(x[0]));
}

TEST(Rotation, AnglesAreSeededAndInRange) {
  torch::manual_seed(5);
  const auto a = data::draw_rotation_angles(2000, 25);
  torch::manual_seed(5);
  const auto b = data::draw_rotation_angles(2000, 25);
  EXPECT_TRUE(a.equal(b));
  EXPECT_LE(a.max().item<double>(), 25.0);
  EXPECT_GE(a.min().item<double>(), -25.0);
  EXPECT_GT(a.max().item<double>(), 20.0);  // spread over the whole range
  EXPECT_LT(a.min().item<double>(), -20.0);
}

// A tree of small grey PNGs: root/<split>/<class>/<file>, each image's pixels all `value`.
void write_tree_image(const std::filesystem::path& file, uint8_t value, int side = 28) {
  std::filesystem::create_directories(file.parent_path());
  data::write_png(file, {side, side, std::vector<uint8_t>(static_cast<size_t>(side) * side, value)});
}

TEST(ImageFolder, ClassesAndFilesAreTakenInImageFoldersOrder) {
  TempDir dir;
  write_tree_image(dir / "train" / "cat" / "b.png", 1);
  write_tree_image(dir / "train" / "cat" / "a.PNG", 2);  // extensions in any case
  write_tree_image(dir / "train" / "cat" / "deeper" / "a.png", 3);
  write_tree_image(dir / "train" / "cat" / ".hidden.png", 9);
  write_tree_image(dir / "train" / "Dog" / "z.png", 4);  // sorted as bytes: "Dog" before "cat"
  write_file_atomically(dir / "train" / "Dog" / "notes.txt", "not an image");
  std::filesystem::create_directories(dir / "train" / ".git");
  write_tree_image(dir / "test" / "cat" / "x.png", 5);
  const data::ImageFolderListing train = data::list_image_folder(dir / "train");
  EXPECT_EQ(train.classes, (std::vector<std::string>{"Dog", "cat"}));
  std::vector<std::string> names;
  for (const auto& f : train.files) names.push_back(std::filesystem::relative(f, dir / "train").string());
  // As sorted(os.walk(...)) visits them: each folder's files sorted, folders in path order.
  EXPECT_EQ(names, (std::vector<std::string>{"Dog/z.png", "cat/a.PNG", "cat/b.png", "cat/deeper/a.png"}));
  EXPECT_EQ(train.labels, (std::vector<int64_t>{0, 1, 1, 1}));
  const data::Split decoded = data::decode_image_folder(train, {1, 28, 28}).split;
  EXPECT_EQ(decoded.images.sizes(), (std::vector<int64_t>{4, 1, 28, 28}));
  const torch::Tensor corners = decoded.images.select(1, 0).select(1, 0).select(1, 0).to(torch::kInt64).contiguous();
  EXPECT_EQ(std::vector<int64_t>(corners.data_ptr<int64_t>(), corners.data_ptr<int64_t>() + 4),
            (std::vector<int64_t>{4, 2, 1, 3}));
  const data::Dataset d = data::load_dataset(dir.path());
  EXPECT_EQ(d.classes, train.classes);
  EXPECT_EQ(d.test.labels.item<int64_t>(), 1);  // "cat" in the training classes' numbering
  EXPECT_EQ(data::load_dataset(dir.path(), 2).train.images.size(0), 2);
}

TEST(ImageFolder, BadTreesAreRefusedNamingTheFolderOrFile) {
  TempDir dir;
  expect_error([&] { data::load_dataset(dir.path()); }, dir.path().string(), "holds no dataset: neither IDX files");
  std::filesystem::create_directories(dir / "train");
  expect_error([&] { data::load_dataset(dir.path()); }, "train", "has no class folders");
  write_tree_image(dir / "train" / "a" / "1.png", 1);
  std::filesystem::create_directories(dir / "train" / "b");
  write_file_atomically(dir / "train" / "b" / "readme.txt", "");
  expect_error([&] { data::load_dataset(dir.path()); }, "train/b", "is a class folder without images");
  write_tree_image(dir / "train" / "b" / "1.png", 1);
  expect_error([&] { data::load_dataset(dir.path()); }, "test", "is missing");
  write_tree_image(dir / "test" / "c" / "1.png", 1);
  expect_error([&] { data::load_dataset(dir.path()); }, "test/c", "is a class the training images do not have");
  std::filesystem::remove_all(dir / "test" / "c");
  write_tree_image(dir / "test" / "a" / "big.png", 1, 32);
  expect_error([&] { data::load_dataset(dir.path()); }, "big.png", "image folders hold pictures of different sizes");
  // --skip-bad does not skip a size: that is a setting to fix. --image-size resizes.
  data::DataOptions skip_bad;
  skip_bad.skip_bad = true;
  expect_error([&] { data::load_dataset(dir.path(), 0, skip_bad); }, "big.png", "--image-size HxW resizes them");
  data::DataOptions resize;
  resize.height = 28, resize.width = 28;
  const data::Dataset resized = data::load_dataset(dir.path(), 0, resize);
  EXPECT_EQ(resized.test.images.sizes(), (std::vector<int64_t>{1, 1, 28, 28}));
  EXPECT_EQ(resized.test.images.max().item<int64_t>(), 1);
  write_file_atomically(dir / "test" / "a" / "big.png", "\x89PNG\r\n\x1a\n broken");
  expect_error([&] { data::load_dataset(dir.path()); }, "big.png", "cannot decode image (PNG: ");
  write_tree_image(dir / "test" / "a" / "fine.png", 3);
  const data::Dataset skipping = data::load_dataset(dir.path(), 0, skip_bad);
  EXPECT_EQ(skipping.test.images.size(0), 1);
  EXPECT_EQ(skipping.test.images.max().item<int64_t>(), 3);
  EXPECT_EQ(skipping.test.labels.item<int64_t>(), 0);
  EXPECT_NE(skipping.skipped.find("Skipped 1 test image files that cannot be decoded (the first: "), std::string::npos)
      << skipping.skipped;
  EXPECT_NE(skipping.skipped.find("big.png"), std::string::npos);
  std::filesystem::remove(dir / "test" / "a" / "fine.png");
  expect_error([&] { data::load_dataset(dir.path(), 0, skip_bad); }, "big.png", "none of the 1 image files");
}

TEST(ImageFolder, ColourTreesKeepTheirColourOrTurnGrey) {
  TempDir dir;
  const auto rgb_png = [&](const std::filesystem::path& file, uint8_t r, uint8_t g, uint8_t b) {
    std::filesystem::create_directories(file.parent_path());
    std::vector<uint8_t> pixels;
    for (int i = 0; i < 20 * 30; ++i) pixels.insert(pixels.end(), {r, g, b});
    data::write_png(file, {30, 20, pixels, 3});  // 30 wide, 20 high
  };
  rgb_png(dir / "train" / "red" / "1.png", 200, 10, 20);
  rgb_png(dir / "train" / "green" / "1.png", 10, 200, 20);
  write_tree_image(dir / "train" / "grey" / "1.png", 90, 1);  // grey, and of another size
  rgb_png(dir / "test" / "red" / "1.png", 210, 0, 0);
  expect_error([&] { data::load_dataset(dir.path()); }, "grey/1.png: 1x1", "pictures of different sizes");
  data::write_png(dir / "train" / "grey" / "1.png", {30, 20, std::vector<uint8_t>(600, 90)});
  // One colour file makes the set colour: grey files are repeated as RGB.
  const data::Dataset colour = data::load_dataset(dir.path());
  EXPECT_EQ(colour.shape(), (data::ImageShape{3, 20, 30}));
  EXPECT_EQ(colour.classes, (std::vector<std::string>{"green", "grey", "red"}));
  const auto first_pixel = [](const torch::Tensor& image) {
    const torch::Tensor p = image.select(1, 0).select(1, 0).to(torch::kInt64).contiguous();
    return std::vector<int64_t>(p.data_ptr<int64_t>(), p.data_ptr<int64_t>() + p.numel());
  };
  EXPECT_EQ(first_pixel(colour.train.images[0]), (std::vector<int64_t>{10, 200, 20}));
  EXPECT_EQ(first_pixel(colour.train.images[1]), (std::vector<int64_t>{90, 90, 90}));
  EXPECT_EQ(first_pixel(colour.test.images[0]), (std::vector<int64_t>{210, 0, 0}));
  // --channels 1 turns colour grey as PIL does; --image-size resizes every picture.
  data::DataOptions grey;
  grey.channels = 1;
  grey.height = 8, grey.width = 12;
  const data::Dataset converted = data::load_dataset(dir.path(), 0, grey);
  EXPECT_EQ(converted.shape(), (data::ImageShape{1, 8, 12}));
  EXPECT_EQ(first_pixel(converted.train.images[2]),
            (std::vector<int64_t>{(200 * 19595 + 10 * 38470 + 20 * 7471 + 0x8000) >> 16}));
  // A budget the images would exceed is refused before anything is decoded.
  data::DataOptions small;
  small.max_memory = 1000;
  expect_error([&] { data::load_dataset(dir.path(), 0, small); }, dir.path().string(),
               "4 images of 3x20x30 need about");
}

// CIFAR records: label byte(s), then the red, green and blue planes of 32x32.
std::string cifar_record(std::initializer_list<uint8_t> labels, uint8_t red) {
  std::string r(labels.begin(), labels.end());
  r += std::string(1024, static_cast<char>(red)) + std::string(1024, 2) + std::string(1024, 3);
  return r;
}

TEST(Cifar, TenAndHundredAreReadWithTheirNames) {
  TempDir dir;
  std::filesystem::create_directories(dir / "ten");
  for (int b = 1; b <= 5; ++b)
    write_file_atomically(dir / "ten" / ("data_batch_" + std::to_string(b) + ".bin"),
                          cifar_record({static_cast<uint8_t>(b)}, static_cast<uint8_t>(10 * b)) + cifar_record({9}, 0));
  write_file_atomically(dir / "ten" / "test_batch.bin", cifar_record({3}, 77));
  write_file_atomically(dir / "ten" / "batches.meta.txt",
                        "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n");
  const data::Dataset ten = data::load_dataset(dir / "ten");
  EXPECT_EQ(ten.classes.size(), 10u);
  EXPECT_EQ(ten.classes[9], "truck");
  EXPECT_EQ(ten.shape(), (data::ImageShape{3, 32, 32}));
  ASSERT_EQ(ten.train.images.size(0), 10);  // the five batches in order
  EXPECT_EQ(ten.train.labels[2].item<int64_t>(), 2);
  EXPECT_EQ(ten.train.images[2][0][31][31].item<int64_t>(), 20);
  EXPECT_EQ(ten.train.images[2][2][0][0].item<int64_t>(), 3);
  EXPECT_EQ(ten.test.labels[0].item<int64_t>(), 3);
  EXPECT_EQ(data::load_dataset(dir / "ten", 3).train.images.size(0), 3);

  std::filesystem::create_directories(dir / "hundred");
  write_file_atomically(dir / "hundred" / "train.bin", cifar_record({4, 42}, 1) + cifar_record({19, 99}, 2));
  write_file_atomically(dir / "hundred" / "test.bin", cifar_record({0, 7}, 3));
  std::string fine, coarse;
  for (int k = 0; k < 100; ++k) fine += "fine" + std::to_string(k) + "\n";
  for (int k = 0; k < 20; ++k) coarse += "coarse" + std::to_string(k) + "\n";
  write_file_atomically(dir / "hundred" / "fine_label_names.txt", fine);
  write_file_atomically(dir / "hundred" / "coarse_label_names.txt", coarse);
  const data::Dataset hundred = data::load_dataset(dir / "hundred");
  EXPECT_EQ(hundred.classes.size(), 100u);
  EXPECT_EQ(hundred.train.labels[1].item<int64_t>(), 99);
  data::DataOptions coarse_labels;
  coarse_labels.coarse_labels = true;
  const data::Dataset superclasses = data::load_dataset(dir / "hundred", 0, coarse_labels);
  EXPECT_EQ(superclasses.classes.size(), 20u);
  EXPECT_EQ(superclasses.train.labels[1].item<int64_t>(), 19);
  data::DataOptions as_idx;
  as_idx.format = "idx";
  expect_error([&] { data::load_dataset(dir / "hundred", 0, as_idx); }, "t10k-images-idx3-ubyte", "");
}

TEST(Cifar, CorruptFilesAreRefusedNamingThem) {
  TempDir dir;
  const std::string good = cifar_record({1}, 5);
  expect_error([&] { data::parse_cifar_records({}, "empty.bin", 1, 0, 10); }, "empty.bin", "is empty");
  const std::vector<uint8_t> cut(good.begin(), good.end() - 1);
  expect_error([&] { data::parse_cifar_records(cut, "cut.bin", 1, 0, 10); }, "cut.bin",
               "3072 bytes, not a whole number of 3073-byte CIFAR records");
  const std::string high = cifar_record({10}, 5);
  expect_error(
      [&] {
        data::parse_cifar_records({high.begin(), high.end()}, "high.bin", 1, 0, 10);
      },
      "high.bin", "label 10 of record 0 is beyond the 10 class names");
  std::filesystem::create_directories(dir / "ten");
  write_file_atomically(dir / "ten" / "test_batch.bin", cifar_record({3}, 5));
  write_file_atomically(dir / "ten" / "batches.meta.txt", "a\nb\n");
  expect_error([&] { data::load_dataset(dir / "ten"); }, "data_batch_1.bin", "");
  expect_error([&] { data::load_test_set(dir / "ten"); }, "test_batch.bin", "label 3 of record 0 is beyond the 2");
  std::filesystem::remove(dir / "ten" / "batches.meta.txt");
  expect_error([&] { data::load_test_set(dir / "ten"); }, "batches.meta.txt", "");
}

TEST(ImageFolder, OneTreeIsSplitByAFixedSeedAndValFoldersValidate) {
  TempDir dir;
  for (int i = 0; i < 10; ++i) write_tree_image(dir / "one" / "a" / (std::to_string(i) + ".png"), 1);
  for (int i = 0; i < 5; ++i) write_tree_image(dir / "one" / "b" / (std::to_string(i) + ".png"), 2);
  write_tree_image(dir / "one" / "c" / "only.png", 3);
  data::DataOptions options;
  options.cache = false;
  const data::Dataset d = data::load_dataset(dir / "one", 0, options);
  EXPECT_EQ(d.classes, (std::vector<std::string>{"a", "b", "c"}));
  // 20% of each class tested: 2 of a's 10, 1 of b's 5; a class of one file trains.
  EXPECT_EQ(d.test.labels.eq(0).sum().item<int64_t>(), 2);
  EXPECT_EQ(d.test.labels.eq(1).sum().item<int64_t>(), 1);
  EXPECT_EQ(d.test.labels.eq(2).sum().item<int64_t>(), 0);
  EXPECT_EQ(d.train.images.size(0), 13);
  EXPECT_FALSE(d.valid.images.defined());
  // The same split every time, for the test set alone too.
  EXPECT_TRUE(data::load_test_set(dir / "one", 0, options).test.labels.equal(d.test.labels));
  options.test_split = 0.5;
  EXPECT_EQ(data::load_dataset(dir / "one", 0, options).test.images.size(0), 5 + 3);
  options.test_split = 1.0;
  expect_error([&] { data::load_dataset(dir / "one", 0, options); }, "--test-split", "between 0 and 1");

  for (const char* split : {"train", "val", "test"})
    for (const char* c : {"x", "y"}) write_tree_image(dir / "three" / split / c / "1.png", split[0]);
  options.test_split = 0.2;
  const data::Dataset given = data::load_dataset(dir / "three", 0, options);
  ASSERT_TRUE(given.valid.images.defined());
  EXPECT_EQ(given.valid.images.size(0), 2);
  EXPECT_EQ(given.valid.images.max().item<int64_t>(), 'v');
  write_tree_image(dir / "three" / "val" / "z" / "1.png", 1);
  expect_error([&] { data::load_dataset(dir / "three", 0, options); }, "val/z",
               "is a class the training images do not have");
}

// A grey PGM of 28x28 pixels all `value`: its size does not depend on the pixels.
void write_pgm(const std::filesystem::path& file, uint8_t value) {
  std::filesystem::create_directories(file.parent_path());
  write_file_atomically(file, "P5\n28 28\n255\n" + std::string(784, static_cast<char>(value)));
}

TEST(ImageFolder, DecodedTreesAreCachedUntilAFileChanges) {
  TempDir dir;
  setenv("CONVKIT_CACHE_DIR", (dir / "cache").c_str(), 1);
  for (const char* split : {"train", "test"})
    for (int i = 0; i < 3; ++i) write_pgm(dir / "tree" / split / "a" / (std::to_string(i) + ".pgm"), 10);
  const data::Dataset first = data::load_dataset(dir / "tree");
  ASSERT_EQ(std::distance(std::filesystem::directory_iterator(dir / "cache"), {}), 1);
  const auto cache_file = std::filesystem::directory_iterator(dir / "cache")->path();
  // The same pixels rewritten with another value but the old modification time: the key is the
  // same, so the cached pixels come back, which shows the cache was read.
  const auto image = dir / "tree" / "train" / "a" / "0.pgm";
  const auto when = std::filesystem::last_write_time(image);
  write_pgm(image, 99);
  std::filesystem::last_write_time(image, when);
  EXPECT_TRUE(data::load_dataset(dir / "tree").train.images.equal(first.train.images));
  // A changed file (a new time) is decoded again.
  std::filesystem::last_write_time(image, when + std::chrono::seconds(5));
  EXPECT_EQ(data::load_dataset(dir / "tree").train.images.max().item<int64_t>(), 99);
  // A cut or corrupt cache file is not trusted: the tree is decoded again and the file rewritten.
  for (const auto& entry : std::filesystem::directory_iterator(dir / "cache")) {
    const auto bytes = read_file_bytes(entry.path());
    write_file_atomically(entry.path(), std::string(bytes.begin(), bytes.end() - 7));
  }
  write_pgm(image, 42);
  std::filesystem::last_write_time(image, when);
  const auto cut = std::filesystem::file_size(cache_file);
  EXPECT_EQ(data::load_dataset(dir / "tree").train.images.max().item<int64_t>(), 42);
  EXPECT_EQ(std::filesystem::file_size(cache_file), cut + 7);
  // Other decoding settings are another key.
  data::DataOptions rgb;
  rgb.channels = 3;
  EXPECT_EQ(data::load_dataset(dir / "tree", 0, rgb).shape().channels, 3);
  // An unwritable cache folder only costs the decoding.
  setenv("CONVKIT_CACHE_DIR", "/proc/convkit-cache", 1);
  EXPECT_EQ(data::load_dataset(dir / "tree").train.images.size(0), 3);
  unsetenv("CONVKIT_CACHE_DIR");
}
