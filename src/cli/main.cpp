// convkit: train, evaluate and explain convolutional image classifiers (LibTorch).
// Each subcommand lives in its own file (cli/commands.h); every error ends here as one line on
// stderr and a non-zero exit code.
#include <CLI/CLI.hpp>

#include <iostream>

#include "cli/commands.h"
#include "util/allocator.h"
#include "util/error.h"
#include "util/interrupt.h"

int main(int argc, char** argv) {
  convkit::configure_allocator();
  CLI::App app{"convkit: train, evaluate and explain convolutional image classifiers"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("convkit ") + CONVKIT_VERSION);
  convkit::install_interrupt_handlers();
  int exit_code = 0;
  convkit::cli::add_train_command(app, std::vector<std::string>(argv, argv + argc));
  convkit::cli::add_eval_command(app);
  convkit::cli::add_predict_command(app, exit_code);
  convkit::cli::add_report_command(app);
  convkit::cli::add_compare_command(app);
  convkit::cli::add_sweep_command(app, exit_code);
  convkit::cli::add_lr_find_command(app);
  convkit::cli::add_export_command(app);

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
  } catch (const convkit::Interrupted& e) {
    std::cerr << "convkit: " << e.what() << "\n";
    return 128 + e.signal();
  } catch (const convkit::Error& e) {
    std::cerr << "convkit: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    // LibTorch errors carry a multi-line backtrace; the first line is the message.
    std::cerr << "convkit: " << convkit::first_line(e.what()) << "\n";
    return 1;
  }
  return exit_code;
}
