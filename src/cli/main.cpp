// convkit: train, evaluate and explain convolutional image classifiers (LibTorch).
// Every error ends here as one line on stderr and a non-zero exit code.
#include <CLI/CLI.hpp>

#include <iostream>

#include "models/models.h"
#include "train/trainer.h"
#include "util/error.h"

namespace {

void add_train_command(CLI::App& app, convkit::train::TrainOptions& o) {
  CLI::App* train = app.add_subcommand("train", "Train a network on FashionMNIST the tutorial's way");
  std::string models;
  for (const auto& n : convkit::models::model_names()) models += (models.empty() ? "" : "|") + n;
  train->add_option("--model", o.model, "Network: " + models)->capture_default_str();
  train->add_option("--epochs", o.epochs, "Training epochs")->capture_default_str();
  train->add_option("--batch-size", o.batch_size, "Images per batch")->capture_default_str();
  train->add_option("--lr", o.lr, "Adam learning rate")->capture_default_str();
  train->add_option("--seed", o.seed, "Seed of the global random generator")->capture_default_str();
  train->add_option("--data", o.data_dir, "Directory with the IDX files (raw or .gz)")->capture_default_str();
  train->add_option("--out", o.out_dir, "Run directory for outputs (default: runs/<model>)");
  train->add_option("--threads", o.threads, "Compute threads (0: all cores)")->capture_default_str();
  train->add_option("--device", o.device, "auto|cpu|cuda")->capture_default_str();
  train->add_option("--rotation", o.rotation, "Max angle (degrees) of the rotated test set")->capture_default_str();
  train->add_option("--limit", o.limit, "Use only the first N training and test images (0: all)")
      ->capture_default_str();
  train->add_flag("--quiet", o.quiet, "No progress bars");
  train->callback([&o] { convkit::train::run_training(o, std::cout); });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"convkit: train, evaluate and explain convolutional image classifiers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "convkit 0.1.0");

  convkit::train::TrainOptions train_options;
  add_train_command(app, train_options);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "convkit: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const convkit::Error& e) {
    std::cerr << "convkit: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // LibTorch errors carry a multi-line backtrace; the first line is the message.
    const std::string what = e.what();
    std::cerr << "convkit: " << what.substr(0, what.find('\n')) << "\n";
    return 1;
  }
  return 0;
}
