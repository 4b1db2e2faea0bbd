// Hostile and unlucky input to every reader and setting: each gets a one-line Error naming the
// file or the setting, within bounded memory and time; nothing crashes or waits forever.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <stb/stb_image_write.h>
#include <sys/stat.h>
#include <torch/torch.h>
#include <zlib.h>

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>

#include "checkpoint/model_info.h"
#include "checkpoint/state_dict.h"
#include "checkpoint/torch_pickle.h"
#include "data/idx.h"
#include "data/image.h"
#include "models/registry.h"
#include "run/options.h"
#include "run/settings.h"
#include "run/sweep.h"
#include "test_util.h"
#include "train/loop.h"
#include "train/optimizer.h"
#include "util/error.h"
#include "util/files.h"

using namespace convkit;
using convkit::testing::TempDir;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

#define EXPECT_ERROR_HAS(call, needle) \
  EXPECT_NE(error_of([&] { call; }).find(needle), std::string::npos) << error_of([&] { call; })

// `bytes` gzip-compressed into one member.
std::string gzip(const std::string& bytes) {
  z_stream zs{};
  deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, bytes.size()), '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  zs.avail_in = static_cast<uInt>(bytes.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// An IDX labels file of `n` zero labels, raw.
std::string idx_labels(uint32_t n) {
  std::string s = {0, 0, 8, 1};
  for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>(n >> shift);
  return s + std::string(n, '\0');
}

}  // namespace

TEST(HostileFiles, OnlyRegularFilesAreRead) {
  TempDir dir;
  ASSERT_EQ(mkfifo((dir / "fifo").c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_ERROR_HAS(read_file_bytes(dir / "fifo"), "fifo: is not a regular file");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));  // no wait for a writer
  EXPECT_ERROR_HAS(read_file_bytes("/dev/zero"), "/dev/zero: is not a regular file");
  EXPECT_ERROR_HAS(read_file_bytes(dir.path()), "is a directory");
  EXPECT_ERROR_HAS(read_file_bytes(dir / "absent"), "absent: cannot open");
  EXPECT_ERROR_HAS(checkpoint::read_state_dict(dir / "fifo"), "not a regular file");
  write_file_atomically(dir / "big", std::string(1000, 'x'));
  EXPECT_ERROR_HAS(read_file_bytes(dir / "big", 999), "more than the limit of 999");
  EXPECT_EQ(read_file_bytes(dir / "big", 1000).size(), 1000u);
}

TEST(HostileFiles, JsonThatIsNotValidNamesTheFile) {
  TempDir dir;
  write_file_atomically(dir / "cut.json", R"({"lr": 0.1)");
  EXPECT_ERROR_HAS(read_json_file(dir / "cut.json"), "cut.json: invalid JSON");
  // A number beyond a double's range is nlohmann's out_of_range, not a parse_error (found by fuzz_sweep).
  write_file_atomically(dir / "huge.json", R"({"lr": 368e17505185368})");
  EXPECT_ERROR_HAS(read_json_file(dir / "huge.json"), "huge.json: invalid JSON");
}

TEST(HostileFiles, GzipInflatesNoFurtherThanTheHeaderDeclares) {
  TempDir dir;
  // 10 labels declared, 64 MiB of zeros behind them: a few KB compressed.
  write_file_atomically(dir / "bomb.gz", gzip(idx_labels(10) + std::string(64 << 20, '\0')));
  EXPECT_LT(std::filesystem::file_size(dir / "bomb.gz"), 200000u);
  EXPECT_ERROR_HAS(data::read_idx(dir / "bomb.gz", data::kIdxLabelsMagic), "trailing bytes after the declared data");
  EXPECT_LE(data::maybe_gunzip(read_file_bytes(dir / "bomb.gz"), "bomb.gz").size(), 4 + 4 + 10 + 1u);
  // A header that declares more than the limit is refused before its data is inflated.
  std::string huge = {0, 0, 8, 3, char(0xff), char(0xff), char(0xff), char(0xff), 0, 0, 1, 0, 0, 0, 1, 0};
  write_file_atomically(dir / "huge.gz", gzip(huge + std::string(1 << 20, '\0')));
  EXPECT_ERROR_HAS(data::read_idx(dir / "huge.gz", data::kIdxImagesMagic), "declares more than");
}

TEST(HostileFiles, GzipMembersAndWhatFollowsThem) {
  TempDir dir;
  const std::string labels = idx_labels(100);
  // gzip writes several members when files are concatenated; all are part of the file.
  write_file_atomically(dir / "two.gz", gzip(labels.substr(0, 30)) + gzip(labels.substr(30)));
  EXPECT_EQ(data::read_idx(dir / "two.gz", data::kIdxLabelsMagic).dims, std::vector<int64_t>{100});
  write_file_atomically(dir / "junk.gz", gzip(labels) + "junk");
  EXPECT_ERROR_HAS(data::read_idx(dir / "junk.gz", data::kIdxLabelsMagic), "4 bytes of garbage after the gzip data");
  const std::string whole = gzip(labels);
  write_file_atomically(dir / "cut.gz", whole.substr(0, whole.size() - 9));
  EXPECT_ERROR_HAS(data::read_idx(dir / "cut.gz", data::kIdxLabelsMagic), "truncated gzip stream");
}

TEST(HostileFiles, DeeplyNestedPickleIsRefused) {
  TempDir dir;
  // None wrapped in a million one-element tuples: LibTorch's archive, a hostile data.pkl.
  std::string pickle = "\x80\x02N" + std::string(1000000, '\x85') + ".";
  {
    caffe2::serialize::PyTorchStreamWriter writer((dir / "deep.pt").string());
    writer.writeRecord("data.pkl", pickle.data(), pickle.size());
    writer.writeEndOfFile();
  }
  EXPECT_ERROR_HAS(checkpoint::read_state_dict(dir / "deep.pt"), "nested more than 100 levels deep");
}

TEST(HostileSettings, JsonValuesMustHaveTheExactTypeAndRange) {
  auto apply = [](const char* text) {
    run::TrainOptions o;
    run::apply_settings(o, nlohmann::json::parse(text), "c.json");
    run::validate(o, "c.json");
  };
  EXPECT_ERROR_HAS(apply(R"({"epochs": 1.5})"), "c.json: setting 'epochs' has the wrong type or range (1.5)");
  EXPECT_ERROR_HAS(apply(R"({"batch_size": 64.9})"), "setting 'batch_size' has the wrong type");
  EXPECT_ERROR_HAS(apply(R"({"seed": -1})"), "setting 'seed' has the wrong type or range (-1)");
  EXPECT_ERROR_HAS(apply(R"({"threads": 4294967296})"), "setting 'threads' has the wrong type or range");
  EXPECT_ERROR_HAS(apply(R"({"threads": 100000})"),
                   "c.json: --threads must be 0 (all cores) or a count from 0 to 1024");
  EXPECT_ERROR_HAS(apply(R"({"epochs": 1000000000})"), "--epochs must be an integer from 1 to 100000");
  EXPECT_ERROR_HAS(apply(R"({"exact": 1})"), "setting 'exact' has the wrong type");
  EXPECT_EQ(error_of([&] { apply(R"({"lr": 1, "epochs": 3, "seed": 18446744073709551615})"); }), "no error");
}

TEST(HostileSettings, FlagTextMustBeAValueOfTheSettingsType) {
  const auto& table = run::settings();
  auto flag = [&](const char* key, const std::string& text) {
    const auto it =
        std::find_if(table.begin(), table.end(), [&](const run::Setting& s) { return s.key == std::string(key); });
    run::TrainOptions o;
    run::set_from_text(*it, o, text);
    return o;
  };
  EXPECT_ERROR_HAS(flag("epochs", "18446744073709551616"), "--epochs: '18446744073709551616' is not an integer");
  EXPECT_ERROR_HAS(flag("epochs", "1.5"), "--epochs: '1.5' is not an integer");
  EXPECT_ERROR_HAS(flag("seed", "-1"), "--seed: '-1' is not an integer");
  EXPECT_ERROR_HAS(flag("lr", "fast"), "--lr: 'fast' is not a number");
  EXPECT_ERROR_HAS(flag("lr", "1e999"), "--lr: '1e999' is not a number");
  EXPECT_EQ(flag("seed", "18446744073709551615").seed, 18446744073709551615ull);
  EXPECT_EQ(flag("lr", "0.25").optimizer.lr, 0.25);
  EXPECT_EQ(flag("model", "mlp").model, "mlp");
}

TEST(HostileSettings, SweepsAreBoundedAndNameTheFile) {
  nlohmann::json grid = nlohmann::json::object();
  for (const char* key : {"lr", "momentum", "gamma", "weight_decay", "label_smoothing", "rotation", "aug_rotate"}) {
    grid[key] = nlohmann::json::array();
    for (int i = 0; i < 10; ++i) grid[key].push_back(0.01 * (i + 1));
  }
  const auto start = std::chrono::steady_clock::now();
  EXPECT_ERROR_HAS(run::sweep_trials({{"grid", grid}}, "s.json"), "s.json: the grid has more than 10000 combinations");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  EXPECT_ERROR_HAS(run::sweep_trials(nlohmann::json::parse(R"({"random": {"trials": 1.5, "space": {}}})"), "s.json"),
                   "s.json: \"random.trials\" must be an integer");
  EXPECT_ERROR_HAS(
      run::sweep_trials(nlohmann::json::parse(R"({"random": {"trials": 2, "seed": "x", "space": {}}})"), "s.json"),
      "s.json: \"random.seed\"");
  EXPECT_ERROR_HAS(run::sweep_trials(nlohmann::json::parse(R"({"base": [1], "grid": {"lr": [0.1]}})"), "s.json"),
                   "s.json: \"base\" must be an object");
  EXPECT_ERROR_HAS(run::sweep_trials(nlohmann::json::parse(R"({"grid": {"epochs": [2.5]}})"), "s.json"),
                   "s.json: setting 'epochs' has the wrong type");
}

TEST(HostileTraining, ANonFiniteLossStopsTraining) {
  torch::manual_seed(0);
  auto model = models::make_model("lenet");
  auto optimizer = train::make_optimizer({}, model->parameters());
  torch::Tensor x = torch::randn({8, 1, 28, 28});
  x[3][0][5][5] = std::numeric_limits<float>::quiet_NaN();
  const torch::Tensor y = torch::zeros({8}, torch::kLong);
  EXPECT_ERROR_HAS(train::train_epoch(*model, *optimizer, x, y, torch::arange(8), 4, torch::kCPU),
                   "training diverged: the loss is nan at step 1");
}

TEST(HostileFiles, OnlyConvkitsOwnModelJsonIsTakenForIt) {
  TempDir dir;
  write_file_atomically(dir / "model.json",
                        R"({"model": "mlp", "num_classes": 10, "normalization": {"mean": 0.9, "std": 0.1}})");
  EXPECT_FALSE(checkpoint::read_checkpoint_info(dir / "model.pt").has_value());  // no "format": not convkit's
  write_file_atomically(dir / "model.json", "not json at all");
  EXPECT_FALSE(checkpoint::read_checkpoint_info(dir / "model.pt").has_value());
  checkpoint::write_checkpoint_info(dir / "model.pt", {"mlp", 10, {{0.25f}, {0.5f}}, data::class_names(), {}});
  EXPECT_EQ(checkpoint::read_checkpoint_info(dir / "model.pt")->model, "mlp");
  EXPECT_EQ(checkpoint::read_checkpoint_info(dir / "model.pt")->classes, data::class_names());
  // Convkit's, with class names that do not fit its class count.
  write_file_atomically(dir / "model.json", R"({"format": "convkit-checkpoint-1", "model": "mlp", "num_classes": 10,
      "normalization": {"mean": 0.2, "std": 0.3}, "classes": ["a", "b", "c"]})");
  EXPECT_ERROR_HAS(checkpoint::read_checkpoint_info(dir / "model.pt"), "3 class names for 10 classes");
  // Something there that cannot be read is reported by name, not taken for "no info".
  std::filesystem::remove(dir / "model.json");
  std::filesystem::create_directory(dir / "model.json");
  EXPECT_ERROR_HAS(checkpoint::read_checkpoint_info(dir / "model.pt"), "model.json");
}

TEST(HostileFiles, ImagesAreBoundedBeforeTheyAreDecoded) {
  TempDir dir;
  // 30 KB of pixels that would pad into a 30000 x 30000 square (3.6 GB as floats).
  data::write_png(dir / "thin.png", {1, 30000, std::vector<uint8_t>(30000, 200)});
  EXPECT_ERROR_HAS(data::read_picture(dir / "thin.png", 1), "thin.png: image of 1x30000 pixels is too large");
  write_file_atomically(dir / "cut.png", "\x89PNG\r\n");
  EXPECT_ERROR_HAS(data::read_picture(dir / "cut.png", 1), "cut.png: cannot decode image");
  data::write_png(dir / "fine.png", {40, 30, std::vector<uint8_t>(1200, 7)});
  EXPECT_EQ(data::read_picture(dir / "fine.png", 1).height, 30);
}

// A PNG's chunks: an 8-byte signature, then length, type, data and CRC each.
std::string png_chunk(const std::string& type, const std::string& data) {
  const auto be32 = [](uint32_t v) { return std::string{char(v >> 24), char(v >> 16), char(v >> 8), char(v)}; };
  const std::string body = type + data;
  return be32(static_cast<uint32_t>(data.size())) + body +
         be32(static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(body.data()), body.size())));
}

TEST(HostileFiles, PngsAreDecodedByLibpngAndCorruptOnesAreRefused) {
  TempDir dir;
  data::write_png(dir / "fine.png", {5, 3, {0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140}});
  const auto fine = read_file_bytes(dir / "fine.png");
  const std::string whole(fine.begin(), fine.end());
  const size_t idat = whole.find("IDAT") - 4, iend = whole.find("IEND") - 4;
  const auto decoded = [&](const std::string& name, const std::string& bytes) {
    write_file_atomically(dir / name, bytes);
    return data::read_picture(dir / name, 1);
  };
  // An empty IDAT chunk is valid (stb_image 2.27 copies from a null pointer on it).
  EXPECT_EQ(decoded("empty-idat.png", whole.substr(0, idat) + png_chunk("IDAT", "") + whole.substr(idat)).pixels,
            data::read_picture(dir / "fine.png", 1).pixels);
  std::string flipped = whole;
  flipped[iend - 1] ^= 0x40;  // the last byte of IDAT's CRC
  EXPECT_ERROR_HAS(decoded("crc.png", flipped), "crc.png: cannot decode image (PNG: IDAT: CRC error)");
  flipped = whole;
  flipped[idat + 10] ^= 0x40;  // inside the compressed pixels
  EXPECT_ERROR_HAS(decoded("inflate.png", flipped), "inflate.png: cannot decode image (PNG: IDAT: ");
  EXPECT_ERROR_HAS(decoded("no-end.png", whole.substr(0, iend)), "no-end.png: cannot decode image (PNG: ");
  EXPECT_ERROR_HAS(decoded("cut.png", whole.substr(0, idat + 12)), "cut.png: cannot decode image (PNG: ");
  // A header that claims more pixels than its data holds.
  std::string tall = whole;
  tall[16 + 7] = 9;  // height 3 -> 9, with the IHDR CRC fixed below
  tall.replace(8, 25, png_chunk("IHDR", tall.substr(16, 13)));
  EXPECT_ERROR_HAS(decoded("tall.png", tall), "tall.png: cannot decode image (PNG: ");
}

TEST(HostileFiles, JpegsAreDecodedByLibjpegTurboAndACutOneIsRefused) {
  TempDir dir;
  std::vector<uint8_t> gradient(64 * 48);
  for (size_t i = 0; i < gradient.size(); ++i) gradient[i] = static_cast<uint8_t>((i % 64) * 4);
  const auto file = dir / "gradient.jpg";
  ASSERT_TRUE(stbi_write_jpg(file.c_str(), 64, 48, 1, gradient.data(), 100));
  const data::Picture image = data::read_picture(file, 1);
  ASSERT_EQ(image.width, 64);
  ASSERT_EQ(image.height, 48);
  int worst = 0;
  for (size_t i = 0; i < gradient.size(); ++i) worst = std::max(worst, std::abs(image.pixels[i] - gradient[i]));
  EXPECT_LE(worst, 8);  // JPEG at quality 100 is nearly lossless on a smooth gradient
  const auto whole = read_file_bytes(file);
  write_file_atomically(dir / "cut.jpg", std::string(whole.begin(), whole.begin() + whole.size() * 2 / 3));
  EXPECT_ERROR_HAS(data::read_picture(dir / "cut.jpg", 1), "cut.jpg: cannot decode image (JPEG: ");
  write_file_atomically(dir / "fills.jpg", std::string("\xff\xff\xd8") + std::string(whole.begin() + 2, whole.end()));
  EXPECT_ERROR_HAS(data::read_picture(dir / "fills.jpg", 1), "fills.jpg: cannot decode image (JPEG: ");
}

TEST(HostileFiles, ImagesTheFuzzerFoundAreRefusedWithoutHarm) {
  // tests/fuzz/crashers/image: inputs on which Debian's stb_image 2.27 writes out of bounds or
  // shifts past an int's width (JPEG, now libjpeg-turbo's to decode) or overflows an int (PNM sizes),
  // or a top-down BMP whose negative height slipped past the size check and took 11 s to decode,
  // or an 80-byte TGA that stb filled out to 6168x6168 pixels from beyond its end.
  const std::filesystem::path dir = std::filesystem::path(CONVKIT_SOURCE_DIR) / "tests" / "fuzz" / "crashers" / "image";
  int files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    ++files;
    const std::string name = entry.path().filename().string();
    const std::string error = error_of([&] { data::read_picture(entry.path(), 1); });
    if (name.find("jpeg-") != std::string::npos) {
      EXPECT_NE(error.find(name + ": cannot decode image (JPEG: "), std::string::npos) << name << ": " << error;
    } else if (name.find("tga-past-its-end") != std::string::npos) {
      EXPECT_NE(error.find(name + ": cannot decode image (a header of 6168x6168 pixels in a file of"),
                std::string::npos)
          << name << ": " << error;
    } else if (name.find("bmp-negative-height") != std::string::npos) {
      EXPECT_NE(error.find(name + ": image of 9x8454137 pixels is too large"), std::string::npos)
          << name << ": " << error;
    } else if (name.find("pnm-integer") != std::string::npos) {
      EXPECT_NE(error.find("corrupt PNM header: a number overflows"), std::string::npos) << name << ": " << error;
    } else {
      EXPECT_NE(error.find(name), std::string::npos) << name << ": " << error;  // an Error naming the file
    }
  }
  EXPECT_GE(files, 3);
  // Numbers up to INT_MAX are stb's to judge (it refuses sizes past 2^24); one more digit is not.
  const auto pnm = [](const std::string& header) {
    const std::string bytes = header + std::string(12, '\x7f');
    return error_of([&] { data::decode_picture({bytes.begin(), bytes.end()}, "x.pgm", 1); });
  };
  EXPECT_EQ(pnm("P5 2 2 255\n"), "no error");
  EXPECT_EQ(pnm("P5 #2147483648 in a comment\n2 2 255\n"), "no error");
  EXPECT_EQ(pnm("P5 2 2 0000000000000255\n"), "no error");
  EXPECT_NE(pnm("P5 2147483647 2 255\n").find("too large"), std::string::npos);
  EXPECT_NE(pnm("P5 2147483648 2 255\n").find("x.pgm: cannot decode image (corrupt PNM header"), std::string::npos);
  EXPECT_NE(pnm("P6\n2 2\n99999999999\n").find("corrupt PNM header"), std::string::npos);
}

namespace {

// A LeNet checkpoint whose central-directory entry for the record ending in `record` is
// rewritten by `patch(method, uncompressed)`: what a hand-crafted archive would declare.
std::filesystem::path patched_checkpoint(const TempDir& dir, const std::string& record,
                                         const std::function<void(uint16_t&, uint32_t&)>& patch) {
  const auto file = dir / "patched.pt";
  checkpoint::save_state_dict(*models::make_model("lenet"), file);
  std::vector<uint8_t> b = read_file_bytes(file);
  for (size_t p = 0; p + 46 < b.size(); ++p) {
    if (b[p] != 'P' || b[p + 1] != 'K' || b[p + 2] != 1 || b[p + 3] != 2) continue;
    const size_t name_len = b[p + 28] | b[p + 29] << 8;
    const std::string name(b.begin() + p + 46, b.begin() + p + 46 + name_len);
    if (name.size() < record.size() || name.compare(name.size() - record.size(), record.size(), record) != 0) continue;
    uint16_t method = b[p + 10] | b[p + 11] << 8;
    uint32_t size = b[p + 24] | b[p + 25] << 8 | b[p + 26] << 16 | static_cast<uint32_t>(b[p + 27]) << 24;
    patch(method, size);
    b[p + 10] = method & 0xff, b[p + 11] = method >> 8;
    for (int i = 0; i < 4; ++i) b[p + 24 + i] = static_cast<uint8_t>(size >> (8 * i));
    write_file_atomically(file, std::string(b.begin(), b.end()));
    return file;
  }
  ADD_FAILURE() << "no record " << record;
  return file;
}

void put(std::string& s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s += static_cast<char>(v >> (8 * i));
}

// A zip archive of stored records, as a zip tool writes it; `bad_crc` spoils the first record's CRC.
std::string stored_zip(const std::vector<std::pair<std::string, std::string>>& records, bool bad_crc = false) {
  std::string body, directory;
  for (const auto& [name, data] : records) {
    const uint32_t crc = crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())) ^
                         (bad_crc && body.empty());
    std::string common;
    put(common, 20, 2), put(common, 0, 2), put(common, 0, 2), put(common, 0, 4);  // version, flags, method, time
    put(common, crc, 4), put(common, data.size(), 4), put(common, data.size(), 4), put(common, name.size(), 2);
    put(common, 0, 2);  // extra
    put(directory, 0x02014b50, 4), put(directory, 20, 2), directory += common;
    put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 2), put(directory, 0, 4);  // comment .. attributes
    put(directory, body.size(), 4), directory += name;
    put(body, 0x04034b50, 4), body += common + name + data;
  }
  std::string end;
  put(end, 0x06054b50, 4), put(end, 0, 4), put(end, records.size(), 2), put(end, records.size(), 2);
  put(end, directory.size(), 4), put(end, body.size(), 4), put(end, 0, 2);
  return body + directory + end;
}

}  // namespace

TEST(HostileFiles, ZipArchivesMustBeTorchSaveOnesAndIntact) {
  TempDir dir;
  const std::string empty_dict = "\x80\x02}.";
  const auto read = [&](const std::string& stem, const std::string& bytes) {
    write_file_atomically(dir / stem, bytes);
    return checkpoint::read_torch_state_dict(dir / stem);
  };
  EXPECT_TRUE(read("fine.pt", stored_zip({{"fine/data.pkl", empty_dict}, {"fine/version", "3\n"}})).empty());
  EXPECT_ERROR_HAS(read("flat.pt", stored_zip({{"data.pkl", empty_dict}, {"version", "3\n"}})),
                   "flat.pt: not a torch.save archive (record 'data.pkl' is not in a folder)");
  EXPECT_ERROR_HAS(read("future.pt", stored_zip({{"a/data.pkl", empty_dict}, {"a/version", "99\n"}})),
                   "future.pt: unsupported torch.save format version (supported: 1 to 10)");
  EXPECT_ERROR_HAS(read("noversion.pt", stored_zip({{"a/data.pkl", empty_dict}})),
                   "noversion.pt: not a torch.save archive (no version record)");
  EXPECT_ERROR_HAS(read("nopickle.pt", stored_zip({{"a/version", "3\n"}})),
                   "nopickle.pt: not a torch.save archive (no data.pkl)");
  EXPECT_ERROR_HAS(read("crc.pt", stored_zip({{"a/data.pkl", empty_dict}, {"a/version", "3\n"}}, true)),
                   "crc.pt: zip record 'a/data.pkl' fails its CRC-32 check");
  EXPECT_ERROR_HAS(read("twice.pt", stored_zip({{"a/data.pkl", empty_dict}, {"a/data.pkl", empty_dict}})),
                   "twice.pt: zip record 'a/data.pkl' appears twice");
}

TEST(HostileFiles, CheckpointRecordsAreBoundedBeforeTheyAreRead) {
  TempDir dir;
  // A zip bomb: a record that declares it inflates to 3.75 GiB.
  const auto bomb = patched_checkpoint(dir, "data/0", [](uint16_t& method, uint32_t& size) {
    method = 8;
    size = 0xf0000000u;
  });
  EXPECT_ERROR_HAS(checkpoint::read_state_dict(bomb), "would inflate the checkpoint's compressed records past 256 MiB");
  // A stored record that claims more bytes than it holds.
  const auto liar = patched_checkpoint(dir, "data.pkl", [](uint16_t&, uint32_t& size) { size += 4096; });
  EXPECT_ERROR_HAS(checkpoint::read_state_dict(liar), "is stored but declares");
  // Cut before its directory: no end record to find.
  const auto whole = read_file_bytes(liar);
  write_file_atomically(dir / "cut.pt", std::string(whole.begin(), whole.begin() + whole.size() / 2));
  EXPECT_ERROR_HAS(checkpoint::read_state_dict(dir / "cut.pt"), "cut.pt");
  // The untouched archive still loads.
  checkpoint::save_state_dict(*models::make_model("lenet"), dir / "fine.pt");
  EXPECT_EQ(checkpoint::read_state_dict(dir / "fine.pt").size(), 10u);
}

// Files python3-torch wrote (the fuzz seeds): the same state_dict as zip and legacy archives.
TEST(HostileFiles, LegacyCheckpointsReadLikeZipOnesAndEveryTruncationIsAnError) {
  const std::filesystem::path seeds = std::filesystem::path(CONVKIT_SOURCE_DIR) / "tests/fuzz/corpus/state_dict";
  const auto zip = checkpoint::read_torch_state_dict(seeds / "zip.pt");
  const auto legacy = checkpoint::read_torch_state_dict(seeds / "legacy.pt");
  ASSERT_EQ(zip.size(), 3u);
  ASSERT_EQ(legacy.size(), zip.size());
  for (size_t i = 0; i < zip.size(); ++i) {
    EXPECT_EQ(legacy[i].first, zip[i].first);
    EXPECT_TRUE(torch::equal(legacy[i].second, zip[i].second)) << zip[i].first;
  }
  // A strided view of a storage shared by nothing else, in double precision.
  const auto view = checkpoint::read_torch_state_dict(seeds / "legacy_view.pt");
  ASSERT_EQ(view.size(), 1u);
  EXPECT_TRUE(torch::equal(view[0].second, torch::tensor({{1.0, 2.0}, {4.0, 5.0}}, torch::kDouble)));

  TempDir dir;
  const auto whole = read_file_bytes(seeds / "legacy.pt");
  for (size_t cut = 0; cut < whole.size(); ++cut) {
    write_file_atomically(dir / "cut.pt", std::string(whole.begin(), whole.begin() + static_cast<std::ptrdiff_t>(cut)));
    EXPECT_ERROR_HAS(checkpoint::read_torch_state_dict(dir / "cut.pt"), "cut.pt");
  }
  write_file_atomically(dir / "longer.pt", std::string(whole.begin(), whole.end()) + "x");
  EXPECT_ERROR_HAS(checkpoint::read_torch_state_dict(dir / "longer.pt"), "1 bytes after the last storage");
}
