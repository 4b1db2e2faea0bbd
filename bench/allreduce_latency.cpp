// What an allreduce of a gradient costs a training step on this machine, by the ways Gloo can run
// it: W processes (forked here, joined through a c10d FileStore on 127.0.0.1) each "compute" for
// a fixed time (a busy loop, as a training step keeps its core busy), then sum a float buffer.
// Prints, as JSON on stdout, each way's cost per step (the mean step time less the compute), its
// median and 99th percentile:
//
//   allreduce_latency [--ranks 2] [--floats 44426] [--compute-us 1000] [--steps 2000]
//
// The ways: c10d's ProcessGroupGloo allreduce and barrier (a worker thread runs each collective,
// a device thread reads the sockets), and convkit's SynchronousAllreduce, which `convkit train`
// uses for the gradient (the calling thread sends and reads), sleeping or polling while it waits.
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "dist/synchronous_allreduce.h"

using Clock = std::chrono::steady_clock;
using convkit::dist::SynchronousAllreduce;

namespace {

void busy_for(double microseconds) {
  const auto end = Clock::now() + std::chrono::duration<double, std::micro>(microseconds);
  while (Clock::now() < end) {
  }
}

nlohmann::json measure(const std::function<void()>& exchange, double compute_us, int steps) {
  std::vector<double> times;
  for (int i = 0; i < steps / 10; ++i) exchange();  // connections and buffers warm
  const auto start = Clock::now();
  for (int i = 0; i < steps; ++i) {
    busy_for(compute_us);
    const auto t = Clock::now();
    exchange();
    times.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t).count());
  }
  const double per_step = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / steps;
  std::sort(times.begin(), times.end());
  return {{"cost_per_step_us", per_step - compute_us},
          {"median_us", times[times.size() / 2]},
          {"p99_us", times[times.size() * 99 / 100]}};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"allreduce_latency: what a gradient allreduce costs a step, by the ways Gloo can run it"};
  int ranks = 2, steps = 2000;
  int64_t floats = 44426;  // LeNet's gradient
  double compute_us = 1000;
  app.add_option("--ranks", ranks, "processes")->check(CLI::Range(2, 64));
  app.add_option("--floats", floats, "length of the summed buffer")->check(CLI::Range(int64_t{1}, int64_t{1} << 28));
  app.add_option("--compute-us", compute_us, "busy time before each exchange")->check(CLI::Range(0.0, 1e6));
  app.add_option("--steps", steps, "timed steps per way")->check(CLI::Range(10, 1000000));
  CLI11_PARSE(app, argc, argv);

  const std::string path =
      (std::filesystem::temp_directory_path() / ("allreduce_latency." + std::to_string(getpid()))).string();
  int rank = 0;
  for (int r = 1; r < ranks && rank == 0; ++r)
    if (fork() == 0) rank = r;  // before LibTorch starts any thread
  try {
    torch::set_num_threads(1);
    const auto store = c10::make_intrusive<c10d::FileStore>(path, ranks);
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->threads = 1;
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    c10d::ProcessGroupGloo group(c10::make_intrusive<c10d::PrefixStore>("pg", store), rank, ranks, options);
    SynchronousAllreduce synchronous(c10::make_intrusive<c10d::PrefixStore>("sync", store), options->devices.front(),
                                     rank, ranks, std::chrono::seconds(60));
    std::vector<at::Tensor> gradient{torch::ones({floats})};
    float* data = gradient[0].data_ptr<float>();

    nlohmann::json result{{"ranks", ranks}, {"floats", floats}, {"compute_us", compute_us}, {"steps", steps}};
    result["process_group_allreduce"] = measure([&] { group.allreduce(gradient)->wait(); }, compute_us, steps);
    result["process_group_barrier"] = measure([&] { group.barrier()->wait(); }, compute_us, steps);
    result["synchronous_sleeping"] = measure([&] { synchronous.sum(data, floats, false); }, compute_us, steps);
    result["synchronous_polling"] = measure([&] { synchronous.sum(data, floats, true); }, compute_us, steps);
    if (rank == 0) std::cout << result.dump(2) << "\n";
  } catch (const std::exception& e) {
    std::cerr << "allreduce_latency: rank " << rank << ": " << e.what() << "\n";
    if (rank != 0) _exit(1);
    return 1;
  }
  std::cout.flush();
  if (rank != 0) _exit(0);
  int failed = 0;
  for (int status = 0; wait(&status) > 0;) failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
  std::filesystem::remove(path);
  return failed ? 1 : 0;
}
