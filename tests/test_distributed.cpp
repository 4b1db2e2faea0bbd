// The gradient's allreduce on Gloo's synchronous connections, with ranks as threads of this
// process joined through an in-memory store and real loopback sockets; and how a process reads
// its place in a distributed run, and what a restarted attempt of torchrun's continues.
#include <gtest/gtest.h>

#include <gloo/transport/tcp/device.h>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <thread>
#include <torch/csrc/distributed/c10d/HashStore.hpp>
#include <utility>
#include <vector>

#include "dist/environment.h"
#include "dist/process_group.h"
#include "dist/synchronous_allreduce.h"
#include "run/resolve.h"
#include "run/run_dir.h"
#include "run/settings.h"
#include "test_util.h"
#include "util/files.h"

using convkit::dist::SynchronousAllreduce;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

std::shared_ptr<gloo::transport::Device> loopback() {
  gloo::transport::tcp::attr attr("127.0.0.1");
  return gloo::transport::tcp::CreateDevice(attr);
}

// Waits until `size` threads have arrived, so that no rank leaves while another still connects.
class Barrier {
 public:
  explicit Barrier(int size) : left_(size) {}
  void arrive_and_wait() {
    std::unique_lock<std::mutex> lock(mutex_);
    if (--left_ == 0) all_arrived_.notify_all();
    all_arrived_.wait(lock, [&] { return left_ == 0; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable all_arrived_;
  int left_;
};

// Runs `fn(rank, allreduce)` on `size` threads once every rank is connected; rethrows the first
// rank's error, if any. A rank that fails to connect still arrives, so the others never wait for it.
template <typename Fn>
void on_ranks(int size, std::chrono::milliseconds timeout, const Fn& fn) {
  const auto store = c10::make_intrusive<c10d::HashStore>();
  std::vector<std::exception_ptr> errors(size);
  std::vector<std::thread> threads;
  Barrier connected(size);
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([&, r] {
      try {
        std::unique_ptr<SynchronousAllreduce> allreduce;
        try {
          allreduce = std::make_unique<SynchronousAllreduce>(store, loopback(), r, size, timeout);
        } catch (...) {
          connected.arrive_and_wait();
          throw;
        }
        connected.arrive_and_wait();
        fn(r, *allreduce);
      } catch (...) {
        errors[r] = std::current_exception();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

std::vector<float> values_of_rank(int rank, size_t n) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<float>(std::sin(0.37 * (rank * 7919.0 + i)) * 1e-3);
  return v;
}

// A sum expected to fail: how long it took lands in `seconds`, the error goes on.
void failing_sum(SynchronousAllreduce& allreduce, bool spin, double& seconds) {
  std::vector<float> x(100, 1.0f);
  const auto start = Clock::now();
  try {
    allreduce.sum(x.data(), x.size(), spin);
  } catch (...) {
    seconds = std::chrono::duration<double>(Clock::now() - start).count();
    throw;
  }
}

}  // namespace

TEST(SynchronousAllreduce, EveryRankEndsWithTheSameSumEveryTime) {
  constexpr size_t n = 1001;  // not a multiple of the halving-doubling's chunks
  for (int size : {2, 3, 4}) {
    std::vector<std::vector<float>> first(size), second(size);
    on_ranks(size, 20s, [&](int r, SynchronousAllreduce& allreduce) {
      first[r] = values_of_rank(r, n);
      allreduce.sum(first[r].data(), n, /*spin=*/false);
      second[r] = values_of_rank(r, n);
      allreduce.sum(second[r].data(), n, /*spin=*/true);
    });
    for (int r = 0; r < size; ++r) {
      EXPECT_EQ(first[r], first[0]) << size << " ranks: rank " << r << " differs from rank 0";
      EXPECT_EQ(second[r], first[0]) << size << " ranks: rank " << r << "'s second sum differs";
    }
    for (size_t i = 0; i < n; ++i) {
      double expected = 0;
      for (int r = 0; r < size; ++r) expected += values_of_rank(r, n)[i];
      ASSERT_NEAR(first[0][i], expected, 1e-8) << size << " ranks, element " << i;
    }
  }
}

TEST(SynchronousAllreduce, AnotherBufferIsSummedToo) {
  on_ranks(2, 20s, [](int r, SynchronousAllreduce& allreduce) {
    std::vector<float> small(10, 1.0f + r), large(37, 2.0f * r);
    allreduce.sum(small.data(), small.size(), false);
    allreduce.sum(large.data(), large.size(), false);
    EXPECT_EQ(small, std::vector<float>(10, 3.0f));
    EXPECT_EQ(large, std::vector<float>(37, 2.0f));
  });
}

TEST(SynchronousAllreduce, ARankThatLeavesFailsTheOthersAtOnce) {
  for (bool spin : {false, true}) {
    double seconds = 0;
    EXPECT_THROW(on_ranks(2, 20s,
                          [&](int r, SynchronousAllreduce& allreduce) {
                            if (r == 1) return;  // its connections close as it leaves
                            std::this_thread::sleep_for(100ms);
                            failing_sum(allreduce, spin, seconds);
                          }),
                 std::exception)
        << "spin " << spin;
    EXPECT_GT(seconds, 0.0) << "spin " << spin << ": rank 0's sum is what failed";
    EXPECT_LT(seconds, 5.0) << "spin " << spin << ": well before the 20 s timeout";
  }
}

TEST(SynchronousAllreduce, ARankThatNeverComesFailsTheOthersAtTheTimeout) {
  for (bool spin : {false, true}) {
    double seconds = 0;
    EXPECT_THROW(on_ranks(2, 300ms,
                          [&](int r, SynchronousAllreduce& allreduce) {
                            if (r == 1) {
                              std::this_thread::sleep_for(2s);  // connected, but never sums
                              return;
                            }
                            failing_sum(allreduce, spin, seconds);
                          }),
                 std::exception)
        << "spin " << spin;
    EXPECT_GT(seconds, 0.25) << "spin " << spin;
    EXPECT_LT(seconds, 1.7) << "spin " << spin << ": at the 0.3 s timeout, not when the other rank leaves";
  }
}

namespace {

// Unsets torchrun's variables for as long as it lives, then puts back what was there.
class TorchrunVariables {
 public:
  TorchrunVariables() {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      saved_.emplace_back(name, value ? std::optional<std::string>(value) : std::nullopt);
      unsetenv(name);
    }
  }
  ~TorchrunVariables() {
    for (const auto& [name, value] : saved_) value ? (void)setenv(name, value->c_str(), 1) : (void)unsetenv(name);
  }

 private:
  static constexpr const char* kNames[] = {"RANK",
                                           "WORLD_SIZE",
                                           "MASTER_ADDR",
                                           "MASTER_PORT",
                                           "LOCAL_RANK",
                                           "LOCAL_WORLD_SIZE",
                                           "GROUP_RANK",
                                           "TORCHELASTIC_USE_AGENT_STORE",
                                           "TORCHELASTIC_RESTART_COUNT"};
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

}  // namespace

TEST(DistributedEnvironment, TorchrunsVariablesAreReadAndCheckedByName) {
  const TorchrunVariables unset;
  EXPECT_FALSE(convkit::dist::environment_from_variables()) << "no RANK or WORLD_SIZE: one process";
  setenv("RANK", "1", 1);
  setenv("WORLD_SIZE", "4", 1);
  setenv("MASTER_ADDR", "10.0.0.1", 1);
  setenv("MASTER_PORT", "29500", 1);
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  const auto env = convkit::dist::environment_from_variables();
  ASSERT_TRUE(env);
  EXPECT_EQ(env->rank, 1);
  EXPECT_EQ(env->world_size, 4);
  EXPECT_EQ(env->local_rank, 1) << "RANK modulo LOCAL_WORLD_SIZE when LOCAL_RANK is not set";
  EXPECT_EQ(env->store_address(), "10.0.0.1:29500");
  setenv("RANK", "4", 1);
  try {
    convkit::dist::environment_from_variables();
    ADD_FAILURE() << "RANK 4 of WORLD_SIZE 4 was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("RANK='4'"), std::string::npos) << e.what();
  }
  setenv("RANK", "0", 1);
  unsetenv("MASTER_PORT");
  try {
    convkit::dist::environment_from_variables();
    ADD_FAILURE() << "no MASTER_PORT was accepted";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("MASTER_PORT"), std::string::npos) << e.what();
  }
}

TEST(DistributedEnvironment, ThreadsAreSharedAndPollingNeedsACoreAThread) {
  EXPECT_EQ(convkit::dist::threads_per_process(4, 2), 2);
  EXPECT_EQ(convkit::dist::threads_per_process(3, 2), 1);
  EXPECT_EQ(convkit::dist::threads_per_process(2, 3), 1) << "at least one thread each";
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  EXPECT_TRUE(convkit::dist::each_thread_has_a_core(1, 1));
  EXPECT_FALSE(convkit::dist::each_thread_has_a_core(1, cores + 1)) << "more processes than cores";
}

TEST(DistributedEnvironment, GradientWaitNamesAreTheFlagsValues) {
  using convkit::dist::GradientWait;
  EXPECT_EQ(convkit::dist::gradient_wait_named("auto"), GradientWait::automatic);
  EXPECT_EQ(convkit::dist::gradient_wait_named("poll"), GradientWait::poll);
  EXPECT_EQ(convkit::dist::gradient_wait_named("sleep"), GradientWait::sleep);
  EXPECT_THROW(convkit::dist::gradient_wait_named("spin"), std::exception);
}

namespace {

// A run directory as an earlier attempt leaves it after an epoch: run.json and resume.pt.
void leave_resumable_run(const std::filesystem::path& dir, const convkit::run::TrainOptions& options) {
  std::filesystem::create_directories(dir);
  convkit::write_file_atomically(dir / "run.json", convkit::run::settings_json(options, options.threads).dump(2));
  convkit::write_file_atomically(dir / "resume.pt", "its contents are read on resume, not here");
}

}  // namespace

TEST(RestartedAttempt, ContinuesTheRunItsCommandLineNamesWhenItsSettingsAreTheSame) {
  using convkit::run::TrainRequest;
  convkit::testing::TempDir tmp;
  const std::string dir = (tmp / "run").string();
  TrainRequest request;
  request.out_dir = dir;
  request.flags.optimizer.lr = 0.002;
  request.flags.epochs = 2;
  request.given = {"lr", "epochs"};
  EXPECT_TRUE(convkit::run::earlier_attempt(request).dir.empty()) << "no earlier attempt: start afresh";

  convkit::run::TrainOptions earlier = convkit::run::resolve_train_options(request);
  earlier.world_size = 3;  // a group may come back in another size
  earlier.threads = 5;     // run.json holds the threads the run resolved
  leave_resumable_run(dir, earlier);
  auto found = convkit::run::earlier_attempt(request);
  EXPECT_EQ(found.dir, dir);
  EXPECT_FALSE(found.finished);
  const TrainRequest resumed = convkit::run::resuming(request, found.dir);
  EXPECT_EQ(resumed.resume_dir, dir);
  EXPECT_EQ(resumed.given, std::set<std::string>{"epochs"}) << "a resume may change only how long, where";
  const convkit::run::TrainOptions options = convkit::run::resolve_train_options(resumed);
  EXPECT_EQ(options.optimizer.lr, 0.002) << "the run's own settings";
  EXPECT_EQ(options.threads, 5) << "the run's own threads, as the unchanged command line gave them";

  convkit::write_file_atomically(tmp / "run" / "metrics.json", "{}");
  EXPECT_TRUE(convkit::run::earlier_attempt(request).finished) << "metrics.json: the run finished";

  request.flags.optimizer.lr = 0.001;  // another run's directory, or another command line: not this run
  EXPECT_TRUE(convkit::run::earlier_attempt(request).dir.empty());
  request.flags.optimizer.lr = 0.002;
  request.flags.epochs = 3;  // nor is a run of another length
  EXPECT_TRUE(convkit::run::earlier_attempt(request).dir.empty());
  request.flags.epochs = 2;
  std::filesystem::remove(tmp / "run" / "resume.pt");  // the attempt died before its first epoch ended
  EXPECT_TRUE(convkit::run::earlier_attempt(request).dir.empty());
  leave_resumable_run(dir, earlier);
  request.resume_dir = dir;  // --resume given: that run, finished or not, whatever its settings
  request.flags.optimizer.lr = 0.001;
  found = convkit::run::earlier_attempt(request);
  EXPECT_EQ(found.dir, dir);
  EXPECT_TRUE(found.finished);
  std::filesystem::remove(tmp / "run" / "metrics.json");
  EXPECT_FALSE(convkit::run::earlier_attempt(request).finished);
}

TEST(RestartedAttempt, ARunThatTrainsForgetsAnOlderRunsProgress) {
  convkit::testing::TempDir tmp;
  const convkit::run::RunDir run{tmp.path()};
  const auto leave_all = [&] {
    for (const auto& file : {run.resume(), run.history(), run.metrics(), run.model()})
      convkit::write_file_atomically(file, "an older run's");
  };
  leave_all();
  EXPECT_TRUE(run.finished());
  convkit::run::forget_progress(run, /*resumed=*/true);
  EXPECT_FALSE(run.finished()) << "a resumed run is finished again only when it writes its metrics";
  EXPECT_TRUE(std::filesystem::exists(run.resume()) && std::filesystem::exists(run.history()));
  leave_all();
  convkit::run::forget_progress(run, /*resumed=*/false);
  for (const auto& file : {run.resume(), run.history(), run.metrics(), run.model()})
    EXPECT_FALSE(std::filesystem::exists(file)) << file << ": a fresh run leaves nothing of how far an older run got";
}
