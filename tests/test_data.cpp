#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "data/batches.h"
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
    EXPECT_EQ(m.train.images.sizes(), (std::vector<int64_t>{100, 28, 28}));
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

TEST(Dataset, WrongImageSize) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  data::write_idx(dir / "train-images-idx3-ubyte", data::kIdxImagesMagic, {20, 32, 32},
                  std::vector<uint8_t>(20 * 32 * 32));
  expect_error([&] { data::load_dataset(dir.path()); }, "train-images-idx3-ubyte", "expected 28x28");
}

TEST(Dataset, NormalisationMatchesDefinition) {
  const auto images = torch::randint(0, 256, {50, 28, 28}, torch::kUInt8);
  const auto norm = data::normalization_from(images);
  const auto d = images.to(torch::kDouble) / 255;
  EXPECT_NEAR(norm.mean, d.mean().item<double>(), 1e-6);
  EXPECT_NEAR(norm.std, d.std().item<double>(), 1e-6);  // unbiased, as torch's std()
  const auto x = data::to_model_input(images, norm);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{50, 1, 28, 28}));
  EXPECT_NEAR(x.mean().item<double>(), 0.0, 1e-4);
  EXPECT_NEAR(x.std().item<double>(), 1.0, 1e-4);
}

TEST(Dataset, LargeInputsOnHugePagesHoldTheSameValues) {
  // 12,000 images (36 MB of floats) take the 2 MB-aligned allocation; slices of 100 the plain one.
  torch::manual_seed(29);
  const auto images = torch::randint(0, 256, {12000, 28, 28}, torch::kUInt8);
  const data::Normalization norm{0.2860f, 0.3530f};
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
  data::write_grey_png(file, {side, side, std::vector<uint8_t>(static_cast<size_t>(side) * side, value)});
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
  const data::Split decoded = data::decode_image_folder(train).split;
  EXPECT_EQ(decoded.images.sizes(), (std::vector<int64_t>{4, 28, 28}));
  const torch::Tensor corners = decoded.images.select(1, 0).select(1, 0).to(torch::kInt64).contiguous();
  EXPECT_EQ(std::vector<int64_t>(corners.data_ptr<int64_t>(), corners.data_ptr<int64_t>() + 4),
            (std::vector<int64_t>{4, 2, 1, 3}));
  const data::Dataset d = data::load_dataset(dir.path());
  EXPECT_EQ(d.classes, train.classes);
  EXPECT_EQ(d.test.labels.item<int64_t>(), 1);  // "cat" in the training classes' numbering
  EXPECT_EQ(data::load_dataset(dir.path(), 2).train.images.size(0), 2);
}

TEST(ImageFolder, BadTreesAreRefusedNamingTheFolderOrFile) {
  TempDir dir;
  expect_error([&] { data::load_dataset(dir.path()); }, dir.path().string(), "holds neither IDX files");
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
  expect_error([&] { data::load_dataset(dir.path()); }, "big.png", "image of 32x32 pixels");
  // --skip-bad does not skip a size: that is a setting to fix. --image-size 28x28 resizes.
  expect_error([&] { data::load_dataset(dir.path(), 0, {false, true}); }, "big.png", "--image-size 28x28 resizes");
  const data::Dataset resized = data::load_dataset(dir.path(), 0, {true, false});
  EXPECT_EQ(resized.test.images.sizes(), (std::vector<int64_t>{1, 28, 28}));
  EXPECT_EQ(resized.test.images.max().item<int64_t>(), 1);
  write_file_atomically(dir / "test" / "a" / "big.png", "\x89PNG\r\n\x1a\n broken");
  expect_error([&] { data::load_dataset(dir.path()); }, "big.png", "cannot decode image (PNG: ");
  write_tree_image(dir / "test" / "a" / "fine.png", 3);
  const data::Dataset skipping = data::load_dataset(dir.path(), 0, {false, true});
  EXPECT_EQ(skipping.test.images.size(0), 1);
  EXPECT_EQ(skipping.test.images.max().item<int64_t>(), 3);
  EXPECT_EQ(skipping.test.labels.item<int64_t>(), 0);
  EXPECT_NE(skipping.skipped.find("Skipped 1 test image files that cannot be decoded (the first: "), std::string::npos)
      << skipping.skipped;
  EXPECT_NE(skipping.skipped.find("big.png"), std::string::npos);
  std::filesystem::remove(dir / "test" / "a" / "fine.png");
  expect_error([&] { data::load_dataset(dir.path(), 0, {false, true}); }, "big.png", "none of the 1 image files");
}
