// `convkit export` end to end on the real FashionMNIST: the TorchScript file, loaded back with
// torch::jit::load as a C++ deployment would, gives convkit's logits on all 10,000 test images.
#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "cli_util.h"
#include "data/dataset.h"
#include "eval/batched_forward.h"
#include "eval/load_model.h"

using namespace convkit;
using namespace convkit::testing;

TEST(ExportCli, TorchScriptInLibTorchGivesConvkitsLogitsOnTheTestSet) {
  TempDir tmp;
  const auto run = tmp / "run";
  ASSERT_EQ(
      run_convkit("train --model lenet-bn --epochs 1 --limit 3000 --quiet --no-report --out " + run.string()).exit_code,
      0);
  const auto file = tmp / "model.torchscript.pt";
  const auto r =
      run_convkit("export " + run.string() + " --format torchscript --with-preprocessing --out " + file.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("pixels float [batch,1,28,28]"), std::string::npos) << r.out;

  eval::LoadedModel loaded = eval::load_model(run / "model.pt", "", data::kDefaultDataDir);
  const data::Split test = data::load_split(data::kDefaultDataDir, data::kTestFiles);
  ASSERT_EQ(test.images.size(0), 10000);
  torch::Tensor expected = torch::empty({10000, 10});
  eval::forward_in_batches(*loaded.model, test.images, loaded.normalization(), torch::kCPU,
                           [&](int64_t start, const models::Output& out) {
                             expected.narrow(0, start, out.logits.size(0)).copy_(out.logits);
                           });
  torch::jit::Module module = torch::jit::load(file.string());
  torch::NoGradGuard no_grad;
  const torch::Tensor actual = module.forward({test.images}).toTensor();  // raw uint8 pixels
  EXPECT_LT((actual - expected).abs().max().item<double>(), 1e-5);
  EXPECT_TRUE(actual.argmax(1).equal(expected.argmax(1)));
  EXPECT_EQ(module.attr("classes").toList().size(), 10u);
}

TEST(ExportCli, HelpAndBadFlags) {
  const auto help = run_convkit("export --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--with-preprocessing"), std::string::npos);
  const auto neither = run_convkit("export --format onnx");
  EXPECT_NE(neither.exit_code, 0);
  EXPECT_NE(neither.err.find("RUN_DIR or --checkpoint"), std::string::npos) << neither.err;
}
