#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "checkpoint/model_info.h"
#include "checkpoint/state_dict.h"
#include "models/registry.h"
#include "models/tutorial_models.h"
#include "run/options.h"
#include "run/settings.h"
#include "run/training.h"
#include "test_util.h"
#include "util/error.h"
#include "util/files.h"

using namespace convkit;
using convkit::testing::TempDir;

namespace {

std::vector<std::string> parameter_names(const torch::nn::Module& m) {
  std::vector<std::string> names;
  for (const auto& p : m.named_parameters()) names.push_back(p.key());
  return names;
}

}  // namespace

TEST(Models, LeNetShapesAndParameters) {
  auto model = models::make_model("lenet");
  EXPECT_EQ(models::count_parameters(*model), 44426);
  EXPECT_EQ(parameter_names(*model),
            (std::vector<std::string>{"conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias", "fc_1.weight",
                                      "fc_1.bias", "fc_2.weight", "fc_2.bias", "fc_3.weight", "fc_3.bias"}));
  const auto out = model->forward(torch::randn({5, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{5, 256}));
}

TEST(Models, LeNetOnColourImagesIsPyTorchsCifarTutorialNetwork) {
  // "Training a classifier": conv1 3->6 k5, conv2 6->16 k5, fc1 400->120, fc2 120->84, fc3 84->10.
  auto model = models::make_model("lenet", 10, {3, 32, 32});
  EXPECT_EQ(models::count_parameters(*model), 62006);
  const auto params = model->named_parameters();
  EXPECT_EQ(params["conv1.weight"].sizes(), (std::vector<int64_t>{6, 3, 5, 5}));
  EXPECT_EQ(params["fc_1.weight"].sizes(), (std::vector<int64_t>{120, 400}));
  const auto out = model->forward(torch::randn({2, 3, 32, 32}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{2, 10}));
  // The fused kernel takes three channels, and agrees with LibTorch's ops.
  EXPECT_TRUE(model->convolutions_fused());
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({3, 3, 32, 32});
  const auto fused = model->forward(x).logits;
  model->set_exact(true);
  EXPECT_LT((fused - model->forward(x).logits).abs().max().item<double>(), 1e-5);
  // Any size from 16x16, not square too; the MLP and specs adapt as well.
  EXPECT_EQ(models::make_model("lenet", 5, {1, 16, 20})->forward(torch::randn({1, 1, 16, 20})).logits.size(1), 5);
  EXPECT_THROW(models::make_model("lenet", 10, {1, 15, 28}), Error);
  EXPECT_EQ(models::count_parameters(*models::make_model("mlp", 100, {3, 32, 32})),
            3072 * 250 + 250 + 250 * 100 + 100 + 100 * 100 + 100);
  auto spec = models::make_model("c8k3p1bn-mp2-c16k3-mp2-fc32", 20, {3, 32, 24});
  EXPECT_EQ(spec->forward(torch::randn({2, 3, 32, 24})).logits.sizes(), (std::vector<int64_t>{2, 20}));
  const auto graph = spec->inference_graph();
  EXPECT_EQ((std::vector<int64_t>{graph.channels, graph.height, graph.width}), (std::vector<int64_t>{3, 32, 24}));
}

TEST(Models, MLPShapesAndParameters) {
  auto model = models::make_model("mlp");
  EXPECT_EQ(models::count_parameters(*model), 222360);
  EXPECT_EQ(parameter_names(*model),
            (std::vector<std::string>{"input_fc.weight", "input_fc.bias", "hidden_fc.weight", "hidden_fc.bias",
                                      "output_fc.weight", "output_fc.bias"}));
  const auto out = model->forward(torch::randn({3, 1, 28, 28}));
  EXPECT_EQ(out.logits.sizes(), (std::vector<int64_t>{3, 10}));
  EXPECT_EQ(out.hidden.sizes(), (std::vector<int64_t>{3, 100}));
}

TEST(Models, InitialisationFollowsTheSeed) {
  torch::manual_seed(1);
  auto a = models::make_model("lenet");
  torch::manual_seed(1);
  auto b = models::make_model("lenet");
  auto c = models::make_model("lenet");
  EXPECT_TRUE(a->parameters()[0].equal(b->parameters()[0]));
  EXPECT_FALSE(a->parameters()[0].equal(c->parameters()[0]));
}

TEST(Models, UnknownNameIsAnError) {
  try {
    models::make_model("resnet");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown model 'resnet'"), std::string::npos);
  }
}

TEST(Checkpoint, RoundTripRestoresEveryTensor) {
  TempDir dir;
  auto a = models::make_model("lenet");
  checkpoint::save_state_dict(*a, dir / "m.pt");
  EXPECT_FALSE(std::filesystem::exists(dir / "m.pt.tmp"));
  auto b = models::make_model("lenet");
  checkpoint::load_state_dict(*b, checkpoint::read_state_dict(dir / "m.pt"), "m.pt");
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(pa[i].equal(pb[i]));
}

TEST(Checkpoint, WrongArchitectureListsKeys) {
  TempDir dir;
  checkpoint::save_state_dict(*models::make_model("mlp"), dir / "mlp.pt");
  auto lenet = models::make_model("lenet");
  try {
    checkpoint::load_state_dict(*lenet, checkpoint::read_state_dict(dir / "mlp.pt"), "mlp.pt");
    FAIL();
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("mlp.pt"), std::string::npos);
    EXPECT_NE(what.find("missing keys: conv1.bias"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected keys: input_fc.weight"), std::string::npos) << what;
  }
}

TEST(Checkpoint, ShapeMismatchIsReported) {
  auto lenet = models::make_model("lenet");
  auto state = checkpoint::state_dict(*lenet);
  for (auto& [name, t] : state)
    if (name == "fc_3.weight") t = torch::zeros({5, 84});
  try {
    checkpoint::load_state_dict(*lenet, state, "x.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("size mismatch for fc_3.weight (checkpoint [5, 84], model [10, 84])"),
              std::string::npos)
        << e.what();
  }
}

TEST(Checkpoint, CorruptFilesGiveClearErrors) {
  TempDir dir;
  write_file_atomically(dir / "junk.pt", "this is not a checkpoint");
  EXPECT_THROW(checkpoint::read_state_dict(dir / "junk.pt"), Error);
  checkpoint::save_state_dict(*models::make_model("lenet"), dir / "m.pt");
  auto bytes = read_file_bytes(dir / "m.pt");
  bytes.resize(bytes.size() / 2);
  write_file_atomically(dir / "half.pt", std::string(bytes.begin(), bytes.end()));
  try {
    checkpoint::read_state_dict(dir / "half.pt");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("half.pt"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
  }
  EXPECT_THROW(checkpoint::read_state_dict(dir / "absent.pt"), Error);
}

TEST(Checkpoint, InfoTravelsBesideTheWeights) {
  TempDir dir;
  EXPECT_FALSE(checkpoint::read_checkpoint_info(dir / "model.pt").has_value());
  checkpoint::write_checkpoint_info(dir / "model.pt", {"mlp", 10, {{0.25f}, {0.5f}}, data::class_names(), {}});
  const auto info = checkpoint::read_checkpoint_info(dir / "model.pt");
  ASSERT_TRUE(info.has_value());
  EXPECT_EQ(info->model, "mlp");
  EXPECT_EQ(info->normalization.std, std::vector<float>{0.5f});
  EXPECT_EQ(info->shape, data::ImageShape{});
  // Colour: a mean and std per channel, and the input's shape.
  checkpoint::write_checkpoint_info(
      dir / "model.pt", {"lenet", 3, {{0.4f, 0.5f, 0.6f}, {0.2f, 0.25f, 0.3f}}, {"cat", "dog", "frog"}, {3, 32, 24}});
  const auto colour = checkpoint::read_checkpoint_info(dir / "model.pt");
  EXPECT_EQ(colour->shape, (data::ImageShape{3, 32, 24}));
  EXPECT_EQ(colour->normalization.mean, (std::vector<float>{0.4f, 0.5f, 0.6f}));
  // Files written before shapes were recorded are FashionMNIST's 1x28x28.
  write_file_atomically(dir / "model.json",
                        R"({"format": "convkit-checkpoint-1", "model": "lenet", "num_classes": 10,
                            "normalization": {"mean": 0.286, "std": 0.353}})");
  EXPECT_EQ(checkpoint::read_checkpoint_info(dir / "model.pt")->shape, data::ImageShape{});
  write_file_atomically(dir / "model.json",
                        R"({"format": "convkit-checkpoint-1", "model": "lenet", "num_classes": 10,
                            "input": {"channels": 3, "height": 28, "width": 28},
                            "normalization": {"mean": 0.286, "std": 0.353}})");
  EXPECT_THROW(checkpoint::read_checkpoint_info(dir / "model.pt"), Error);  // one mean for three channels
  write_file_atomically(dir / "model.json", "{\"format\": \"convkit-checkpoint-1\", \"model\": 3}");
  EXPECT_THROW(checkpoint::read_checkpoint_info(dir / "model.pt"), Error);
}

TEST(Options, InvalidValuesNameTheFlag) {
  auto expect_flag = [](auto mutate, const std::string& flag) {
    run::TrainOptions o;
    mutate(o);
    try {
      run::validate(o);
      FAIL() << flag;
    } catch (const Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(flag, 0), 0u) << e.what();
    }
  };
  expect_flag([](auto& o) { o.epochs = 0; }, "--epochs");
  expect_flag([](auto& o) { o.batch_size = -3; }, "--batch-size");
  expect_flag([](auto& o) { o.optimizer.lr = 0; }, "--lr");
  expect_flag([](auto& o) { o.optimizer.lr = std::nan(""); }, "--lr");
  expect_flag([](auto& o) { o.model = "vgg"; }, "--model");
  expect_flag([](auto& o) { o.rotation = 400; }, "--rotation");
  expect_flag([](auto& o) { o.limit = -1; }, "--limit");
  run::validate(run::TrainOptions{});  // the defaults are valid
}

TEST(Training, LearnsSyntheticDataAndIsReproducible) {
  TempDir dir;
  convkit::testing::write_synthetic_mnist(dir / "data", 1500, 200, true);
  auto run = [&](const std::string& out) {
    run::TrainOptions o;
    o.data_dir = (dir / "data").string();
    o.out_dir = (dir / out).string();
    o.epochs = 3;
    o.threads = 1;
    o.quiet = true;
    std::ostringstream log;
    return run::run_training(o, log);
  };
  const auto a = run("a");
  const auto b = run("b");
  EXPECT_LT(a.history.back().train.loss, a.history.front().train.loss);
  EXPECT_GT(a.test.acc, 0.9);
  EXPECT_EQ(a.test.loss, b.test.loss);  // same seed, same threads: identical numbers
  EXPECT_EQ(a.history.back().valid.loss, b.history.back().valid.loss);
  for (const char* f : {"model.pt", "model.json", "history.json", "metrics.json"}) {
    EXPECT_TRUE(std::filesystem::exists(dir / "a" / f)) << f;
  }
}

// Hand-made archives in PyTorch's zip layout, to feed the state_dict reader what a hostile or
// damaged file could hold.
namespace {

std::string pickle_str(const std::string& s) {
  std::string out = "X";
  const uint32_t n = static_cast<uint32_t>(s.size());
  for (int k = 0; k < 4; ++k) out += static_cast<char>((n >> (8 * k)) & 0xff);
  return out + s;
}

// {"w": tensor of `size` floats viewing a storage of `numel` floats}
std::string tensor_dict_pickle(int numel, int size) {
  return std::string("\x80\x02}(") + pickle_str("w") + "ctorch._utils\n_rebuild_tensor_v2\n((" + pickle_str("storage") +
         "ctorch\nFloatStorage\n" + pickle_str("0") + pickle_str("cpu") + "K" + static_cast<char>(numel) + "tQ" +
         std::string("K\0", 2) + "(K" + static_cast<char>(size) + "t(K\x01t\x89)tRu.";
}

void write_archive(const std::filesystem::path& file, const std::string& pickle, size_t record_floats) {
  caffe2::serialize::PyTorchStreamWriter writer(file.string());
  writer.writeRecord("data.pkl", pickle.data(), pickle.size());
  std::vector<float> values(record_floats, 1.5f);
  writer.writeRecord("data/0", values.data(), values.size() * sizeof(float));
  writer.writeEndOfFile();
}

std::string read_error(const std::filesystem::path& file) {
  try {
    checkpoint::read_state_dict(file);
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST(Checkpoint, HandMadeArchiveIsRead) {
  TempDir dir;
  write_archive(dir / "ok.pt", tensor_dict_pickle(4, 4), 4);
  const auto state = checkpoint::read_state_dict(dir / "ok.pt");
  ASSERT_EQ(state.size(), 1u);
  EXPECT_EQ(state[0].first, "w");
  EXPECT_TRUE(state[0].second.equal(torch::full({4}, 1.5f)));
}

TEST(Checkpoint, HostileArchivesAreRefused) {
  TempDir dir;
  write_archive(dir / "past.pt", tensor_dict_pickle(4, 100), 4);
  EXPECT_NE(read_error(dir / "past.pt").find("tensor extends past its storage"), std::string::npos);
  write_archive(dir / "short.pt", tensor_dict_pickle(10, 4), 4);
  EXPECT_NE(read_error(dir / "short.pt").find("has 16 bytes, expected 40"), std::string::npos);
  const std::string whole = tensor_dict_pickle(4, 4);
  write_archive(dir / "cut.pt", whole.substr(0, whole.size() / 2), 4);
  EXPECT_NE(read_error(dir / "cut.pt").find("pickle data ends early"), std::string::npos);
  write_archive(dir / "evil.pt", std::string("\x80\x02") + "cos\nsystem\n" + pickle_str("ls") + "\x85R.", 0);
  EXPECT_NE(read_error(dir / "evil.pt").find("unsupported object 'os.system'"), std::string::npos);
  write_archive(dir / "list.pt", "\x80\x02].", 0);
  EXPECT_NE(read_error(dir / "list.pt").find("does not hold a state_dict"), std::string::npos);
  // Reference cycles (found by fuzz_state_dict: shared pointers in a cycle are never freed).
  const char self[] =
      "\x80\x02]q\x00h\x00"
      "a.";  // a = []; a.append(a)
  const char mutual[] =
      "\x80\x02]q\x00]q\x01h\x00"
      "aa.";  // b = [a]; then a.append(b)
  write_archive(dir / "self.pt", std::string(self, sizeof self - 1), 0);
  EXPECT_NE(read_error(dir / "self.pt").find("a value is put inside itself"), std::string::npos)
      << read_error(dir / "self.pt");
  write_archive(dir / "mutual.pt", std::string(mutual, sizeof mutual - 1), 0);
  EXPECT_NE(read_error(dir / "mutual.pt").find("changed after being put inside another"), std::string::npos)
      << read_error(dir / "mutual.pt");
  for (const char* f : {"past.pt", "short.pt", "cut.pt", "evil.pt", "list.pt", "self.pt", "mutual.pt"}) {
    const std::string what = read_error(dir / f);
    EXPECT_NE(what.find(f), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}
