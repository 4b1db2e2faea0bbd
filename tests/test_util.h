// Helpers shared by the test files: temporary directories and small generated IDX datasets.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "data/idx.h"

namespace convkit::testing {

// A fresh directory under the system temp dir, removed when the object goes away.
class TempDir {
 public:
  TempDir() {
    static std::mt19937_64 rng{std::random_device{}()};
    path_ = std::filesystem::temp_directory_path() / ("convkit-test-" + std::to_string(rng()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Writes an MNIST-shaped dataset of `n_train` + `n_test` images whose class is visible in the
// pixels (a bright bar whose row depends on the label), so a network can learn it quickly.
inline void write_synthetic_mnist(const std::filesystem::path& dir, int n_train, int n_test, bool gzip) {
  std::filesystem::create_directories(dir);
  std::mt19937 rng(7);
  auto make = [&](const std::string& images, const std::string& labels, int n) {
    std::vector<uint8_t> pixels(static_cast<size_t>(n) * 28 * 28), ys(n);
    for (int i = 0; i < n; ++i) {
      const int label = static_cast<int>(rng() % 10);
      ys[i] = static_cast<uint8_t>(label);
      uint8_t* img = pixels.data() + static_cast<size_t>(i) * 784;
      for (int p = 0; p < 784; ++p) img[p] = static_cast<uint8_t>(rng() % 40);
      for (int c = 4; c < 24; ++c) img[(3 + 2 * label) * 28 + c] = 255;
    }
    const std::string ext = gzip ? ".gz" : "";
    data::write_idx(dir / (images + ext), data::kIdxImagesMagic, {n, 28, 28}, pixels);
    data::write_idx(dir / (labels + ext), data::kIdxLabelsMagic, {n}, ys);
  };
  make("train-images-idx3-ubyte", "train-labels-idx1-ubyte", n_train);
  make("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", n_test);
}

}  // namespace convkit::testing
