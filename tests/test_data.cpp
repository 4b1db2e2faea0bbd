#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "data/batches.h"
#include "data/dataset.h"
#include "data/idx.h"
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
    const auto m = data::load_mnist(dir.path());
    EXPECT_EQ(m.train.images.sizes(), (std::vector<int64_t>{100, 28, 28}));
    EXPECT_EQ(m.test.labels.size(0), 40);
    EXPECT_EQ(m.train.labels.dtype(), torch::kInt64);
    const auto limited = data::load_mnist(dir.path(), 25);
    EXPECT_EQ(limited.train.images.size(0), 25);
    EXPECT_TRUE(limited.train.labels.equal(m.train.labels.slice(0, 0, 25)));
  }
}

TEST(Dataset, LabelOutOfRange) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  auto ys = labels_bytes(20);
  ys[13] = 12;
  data::write_idx(dir / "train-labels-idx1-ubyte", data::kIdxLabelsMagic, {20}, ys);
  expect_error([&] { data::load_mnist(dir.path()); }, "train-labels-idx1-ubyte", "label 12 at index 13");
}

TEST(Dataset, CountMismatch) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  data::write_idx(dir / "t10k-labels-idx1-ubyte", data::kIdxLabelsMagic, {19}, labels_bytes(19));
  expect_error([&] { data::load_mnist(dir.path()); }, "t10k-labels-idx1-ubyte", "has 19 labels but");
}

TEST(Dataset, WrongImageSize) {
  TempDir dir;
  write_synthetic_mnist(dir.path(), 20, 20, false);
  data::write_idx(dir / "train-images-idx3-ubyte", data::kIdxImagesMagic, {20, 32, 32},
                  std::vector<uint8_t>(20 * 32 * 32));
  expect_error([&] { data::load_mnist(dir.path()); }, "train-images-idx3-ubyte", "expected 28x28");
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
