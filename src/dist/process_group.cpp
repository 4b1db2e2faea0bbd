#include "dist/process_group.h"

#include <signal.h>
#include <torch/torch.h>
#include <unistd.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <cerrno>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "dist/synchronous_allreduce.h"
#include "util/error.h"
#include "util/format.h"
#include "util/interrupt.h"
#include "util/stopwatch.h"

namespace convkit::dist {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

constexpr auto kPoll = std::chrono::milliseconds(20);
// How long a rank that saw a collective fail waits for the others to say whether they are alive.
constexpr auto kRollCallGrace = std::chrono::seconds(3);

std::vector<uint8_t> bytes_of(const std::string& s) { return {s.begin(), s.end()}; }
std::string text_of(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

std::string this_host() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// A process that has ended, or ended and waits to be reaped (a zombie), on this machine.
bool process_ended(int64_t pid) {
  if (kill(static_cast<pid_t>(pid), 0) != 0) return errno == ESRCH;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  const size_t close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && (line[close + 2] == 'Z' || line[close + 2] == 'X');
}

std::string seconds_text(std::chrono::milliseconds t) { return strprintf("%g s", t.count() / 1000.0); }

std::string ranks_text(const std::vector<int>& ranks) {
  std::vector<std::string> names;
  for (int r : ranks) names.push_back(std::to_string(r));
  return (ranks.size() == 1 ? "rank " : "ranks ") + join(names, ", ");
}

bool is_loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0; }

}  // namespace

struct ProcessGroup::Impl {
  Environment env;
  std::chrono::milliseconds timeout;
  GradientWait gradient_wait = GradientWait::automatic;
  c10::intrusive_ptr<c10d::Store> store;  // this run's keys (under torchrun's attempt prefix)
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  std::unique_ptr<SynchronousAllreduce> gradient_sum;  // the training step's own connections
  double allreduce_seconds = 0;
  int64_t allreduce_calls = 0;

  std::string key(const std::string& what, int rank) const { return what + "/" + std::to_string(rank); }

  bool hosts_store() const { return env.rank == 0 && !env.agent_store; }

  std::string store_lost(const std::string& cause) const {
    return env.agent_store ? "the rendezvous store at " + env.store_address() + " is gone (" + cause + ")"
                           : "rank 0 was lost: the rendezvous store it hosted at " + env.store_address() +
                                 " is gone (" + cause + ")";
  }

  void connect_store() {
    c10d::TCPStoreOptions o;
    o.port = static_cast<uint16_t>(env.master_port);
    o.isServer = hosts_store();
    o.numWorkers = env.world_size;
    o.waitWorkers = false;  // the roll call below waits, and can name who is missing
    o.timeout = timeout;
    o.multiTenant = true;  // as torch.distributed's env:// rendezvous
    c10::intrusive_ptr<c10d::Store> tcp;
    try {
      tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, o);
    } catch (const std::exception& e) {
      const std::string why = first_line(e.what());
      if (o.isServer) {
        const bool in_use = why.find("in use") != std::string::npos;
        throw Error("MASTER_PORT " + std::to_string(env.master_port) + ": rank 0 cannot host the rendezvous store on " +
                    env.master_addr + (in_use ? ": the port is in use" : "") + " (" + why + ")");
      }
      throw Error("no rendezvous store at " + env.store_address() + " within " + seconds_text(timeout) + " (" +
                  (env.agent_store ? "torchrun's agent should host it" : "rank 0 hosts it") + "): " + why);
    }
    const std::string attempt =
        env.agent_store ? "/worker/attempt_" + std::to_string(env.restart_count) + "/" : std::string();
    store = c10::make_intrusive<c10d::PrefixStore>(attempt + "convkit", tcp);
  }

  bool has(const std::string& k) const { return store->check({k}); }
  std::string get(const std::string& k) const { return text_of(store->get(k)); }

  // The first error a rank reported ("rank R stopped: ..."), or "" when none did. Only the
  // first is kept: the others' are usually its consequences.
  std::string reported_error() const {
    if (store->add("errors", 0) == 0) return "";
    store->wait({"first_error"});
    const json e = json::parse(get("first_error"));
    return "rank " + std::to_string(e.at("rank").get<int>()) + " stopped: " + e.at("message").get<std::string>();
  }

  // Stops this rank when another rank stopped the rendezvous or reported an error.
  void stop_if_another_stopped() const {
    std::string error = has("abort") ? get("abort") : reported_error();
    if (error.empty()) return;
    acknowledge();
    throw Error(error);
  }

  // This rank has read why the run stops.
  void acknowledge() const { store->set(key("ack", env.rank), bytes_of("1")); }

  // The store lives in rank 0's process: when rank 0 stops, it keeps the store up until the
  // others have read why, have ended, or never came. Bounded past the timeout: a rank blocked in
  // Gloo's connection (which waits up to the timeout) must still find the store when it gives up.
  void linger_while_others_read() const noexcept {
    if (!hosts_store()) return;
    try {
      const std::string host = this_host();
      const auto deadline = Clock::now() + timeout + kRollCallGrace;
      for (int r = 1; r < env.world_size && Clock::now() < deadline;) {
        // A rank that claimed its RANK is waited for even before it has announced itself.
        const bool never_came = store->add(key("claim", r), 0) == 0;
        const bool done = never_came || has(key("ack", r)) ||
                          (has(key("rank", r)) && member(r).at("host").get<std::string>() == host &&
                           process_ended(member(r).at("pid").get<int64_t>()));
        if (done) {
          ++r;
        } else {
          std::this_thread::sleep_for(kPoll);
        }
      }
    } catch (...) {
    }
  }

  // Ends the rendezvous on every rank with `message`.
  [[noreturn]] void abort(const std::string& message) const {
    try {
      store->set("abort", bytes_of(message));
    } catch (const std::exception&) {
    }
    throw Error(message);
  }

  void claim_rank() {
    const std::string me = json{{"world_size", env.world_size}, {"host", this_host()}, {"pid", getpid()}}.dump();
    if (store->add(key("claim", env.rank), 1) > 1) {
      abort("RANK " + std::to_string(env.rank) + " was claimed by two processes (this one is pid " +
            std::to_string(getpid()) + " on " + this_host() + "): each process needs its own RANK");
    }
    store->set(key("rank", env.rank), bytes_of(me));
  }

  json member(int r) const { return json::parse(get(key("rank", r))); }

  // Polls `ready` until it holds (true) or the deadline passes (false); stops this rank as soon
  // as another stopped the rendezvous or reported an error.
  template <typename Ready>
  bool wait_until(const Ready& ready, Clock::time_point deadline) const {
    for (;;) {
      stop_if_another_stopped();
      if (ready()) return true;
      if (Clock::now() > deadline) return false;
      std::this_thread::sleep_for(kPoll);
    }
  }

  // Waits until every rank has claimed its RANK, checking their WORLD_SIZE as they arrive.
  void roll_call() {
    std::vector<bool> seen(env.world_size, false);
    std::vector<int> missing;
    const auto everyone_came = [&] {
      missing.clear();
      for (int r = 0; r < env.world_size; ++r) {
        if (seen[r]) continue;
        if (!has(key("rank", r))) {
          missing.push_back(r);
          continue;
        }
        seen[r] = true;
        const json m = member(r);
        if (m.at("world_size").get<int>() != env.world_size) {
          abort(strprintf("WORLD_SIZE differs between ranks: %d on rank %d, %d on rank %d (pid %lld on %s)",
                          env.world_size, env.rank, m.at("world_size").get<int>(), r,
                          static_cast<long long>(m.at("pid").get<int64_t>()), m.at("host").get<std::string>().c_str()));
        }
      }
      return missing.empty();
    };
    if (!wait_until(everyone_came, Clock::now() + timeout)) {
      throw Error(ranks_text(missing) + " of WORLD_SIZE " + std::to_string(env.world_size) + " never arrived within " +
                  seconds_text(timeout) + " at the rendezvous store " + env.store_address());
    }
  }

  std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string& ifname) const {
    try {
      if (!ifname.empty()) return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
      if (is_loopback(env.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
      return c10d::ProcessGroupGloo::createDefaultDevice();
    } catch (const std::exception& e) {
      throw Error((ifname.empty() ? std::string("Gloo cannot bind a network device")
                                  : "GLOO_SOCKET_IFNAME: Gloo cannot use interface '" + ifname + "'") +
                  " (" + first_line(e.what()) + ")");
    }
  }

  void connect_gloo() {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    options->threads = 1;  // one collective at a time: one thread runs it
    if (env.socket_ifname.empty()) {
      options->devices.push_back(gloo_device(""));
    } else {
      std::stringstream names(env.socket_ifname);
      for (std::string name; std::getline(names, name, ',');)
        if (!name.empty()) options->devices.push_back(gloo_device(name));
    }
    try {
      gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", store),
                                                         env.rank, env.world_size, options);
      gradient_sum =
          std::make_unique<SynchronousAllreduce>(c10::make_intrusive<c10d::PrefixStore>("gradient", store),
                                                 options->devices.front(), env.rank, env.world_size, timeout);
    } catch (const std::exception& e) {
      stop_if_another_stopped();
      throw Error("Gloo could not connect the " + std::to_string(env.world_size) + " ranks within " +
                  seconds_text(timeout) + " (" + first_line(e.what()) + ")");
    }
  }

  // Why a collective failed: a rank that reported an error, one whose process ended, or those
  // that did not answer the roll call that follows a failure.
  std::string why_collective_failed(const std::string& cause) const {
    try {
      store->set(key("failed", env.rank), bytes_of(cause));
      const auto deadline = Clock::now() + std::min<std::chrono::milliseconds>(timeout, kRollCallGrace);
      const std::string host = this_host();
      for (;;) {
        const std::string error = has("abort") ? get("abort") : reported_error();
        if (!error.empty()) {
          acknowledge();
          return error;
        }
        std::vector<int> silent;
        for (int r = 0; r < env.world_size; ++r) {
          if (r == env.rank) continue;
          const json m = member(r);
          if (m.at("host").get<std::string>() == host && process_ended(m.at("pid").get<int64_t>())) {
            return "rank " + std::to_string(r) + " (pid " + std::to_string(m.at("pid").get<int64_t>()) +
                   ") was lost: its process ended (" + cause + ")";
          }
          if (!has(key("failed", r))) silent.push_back(r);
        }
        if (silent.empty()) return "a collective failed on every rank (" + cause + ")";
        if (Clock::now() > deadline) return ranks_text(silent) + " was lost: no answer (" + cause + ")";
        std::this_thread::sleep_for(kPoll);
      }
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      return store_lost(first_line(e.what()));
    }
  }

  // Runs a collective; a failure becomes an Error that names its cause.
  template <typename Collective>
  void run(const Collective& collective) const {
    try {
      collective();
    } catch (const std::exception& e) {
      const std::string cause = first_line(e.what());
      stop_if_interrupted();  // a stop asked for by a signal reaches the ranks at different steps
      throw Error(why_collective_failed(cause));
    }
  }

  void wait(const c10::intrusive_ptr<c10d::Work>& work) const {
    run([&] { work->wait(); });
  }

  // An allreduce that began when `clock` started, counted in allreduce_seconds and allreduce_calls.
  void count_allreduce(const Stopwatch& clock) {
    allreduce_seconds += clock.seconds();
    ++allreduce_calls;
  }

  c10d::ProcessGroupGloo& group() const {
    if (!gloo) throw Error("the process group was closed after a failure");
    return *gloo;
  }
};

const std::vector<std::string>& gradient_wait_names() {
  static const std::vector<std::string> names{"auto", "poll", "sleep"};
  return names;
}

const std::string& gradient_wait_name(GradientWait wait) { return gradient_wait_names()[static_cast<size_t>(wait)]; }

GradientWait gradient_wait_named(const std::string& name) {
  const std::vector<std::string>& names = gradient_wait_names();
  for (size_t i = 0; i < names.size(); ++i)
    if (names[i] == name) return static_cast<GradientWait>(i);
  throw Error("'" + name + "' is not a way to wait for the gradient (" + join(names, "|") + ")");
}

ProcessGroup::ProcessGroup(const Environment& env, std::chrono::milliseconds timeout, GradientWait gradient_wait)
    : impl_(std::make_unique<Impl>()) {
  impl_->env = env;
  impl_->timeout = timeout;
  impl_->gradient_wait = gradient_wait;
  // A rank that writes to a peer that has just died must get an error it can report, not die.
  signal(SIGPIPE, SIG_IGN);
  impl_->connect_store();
  try {
    impl_->claim_rank();
    impl_->roll_call();
    impl_->connect_gloo();
    std::vector<at::Tensor> one{torch::ones({1})};
    impl_->wait(impl_->group().allreduce(one));  // every pair connected, in both directions
    impl_->stop_if_another_stopped();
  } catch (const Error&) {
    impl_->linger_while_others_read();
    throw;
  } catch (const std::exception& e) {
    throw Error(impl_->store_lost(first_line(e.what())));
  }
}

ProcessGroup::~ProcessGroup() = default;

GradientWait ProcessGroup::gradient_wait() const {
  if (impl_->gradient_wait != GradientWait::automatic) return impl_->gradient_wait;
  return each_thread_has_a_core(at::get_num_threads(), impl_->env.local_world_size) ? GradientWait::poll
                                                                                    : GradientWait::sleep;
}

int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::size() const { return impl_->env.world_size; }
const Environment& ProcessGroup::environment() const { return impl_->env; }

void ProcessGroup::allreduce_sum(std::vector<at::Tensor>& tensors) const {
  const Stopwatch clock;
  c10d::ProcessGroupGloo& group = impl_->group();
  impl_->wait(tensors.size() == 1 ? group.allreduce(tensors) : group.allreduce_coalesced(tensors));
  impl_->count_allreduce(clock);
}

void ProcessGroup::sum_gradient(const at::Tensor& gradient, bool spin) const {
  if (!gradient.is_cpu() || gradient.scalar_type() != at::kFloat || !gradient.is_contiguous())
    throw Error("the gradient to sum over the ranks must be one contiguous float buffer in memory");
  if (!impl_->gradient_sum) throw Error("the process group was closed after a failure");
  const Stopwatch clock;
  impl_->run([&] { impl_->gradient_sum->sum(gradient.data_ptr<float>(), gradient.numel(), spin); });
  impl_->count_allreduce(clock);
}

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors) const {
  for (const at::Tensor& t : tensors) {
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    impl_->wait(impl_->group().broadcast(one));
    if (!t.is_contiguous()) t.copy_(one[0]);
  }
}

std::string ProcessGroup::broadcast_bytes(const std::string& bytes) const {
  at::Tensor size = torch::tensor({static_cast<int64_t>(bytes.size())});
  broadcast({size});
  at::Tensor data = torch::empty({size.item<int64_t>()}, torch::kUInt8);
  if (is_main()) std::copy(bytes.begin(), bytes.end(), data.data_ptr<uint8_t>());
  broadcast({data});
  const auto* p = reinterpret_cast<const char*>(data.data_ptr<uint8_t>());
  return std::string(p, p + data.numel());
}

void ProcessGroup::agree(const std::string& topic, const nlohmann::json& value) const {
  Impl& i = *impl_;
  try {
    i.store->set(i.key("agree/" + topic, rank()), bytes_of(value.dump()));
    const auto deadline = Clock::now() + i.timeout;
    for (int r = is_main() ? 1 : 0; r < (is_main() ? size() : 1); ++r) {
      if (!i.wait_until([&] { return i.has(i.key("agree/" + topic, r)); }, deadline))
        throw Error("rank " + std::to_string(r) + " did not reach the check of its " + topic + " within " +
                    seconds_text(i.timeout));
      const json theirs = json::parse(i.get(i.key("agree/" + topic, r)));
      const json& rank0 = is_main() ? value : theirs;
      const json& other = is_main() ? theirs : value;
      const int other_rank = is_main() ? r : rank();
      for (const auto& [k, v] : rank0.items()) {
        const json w = other.contains(k) ? other[k] : json();
        if (v != w) {
          i.abort("the ranks differ in their " + topic + ": '" + k + "' is " + v.dump() + " on rank 0 and " + w.dump() +
                  " on rank " + std::to_string(other_rank) + " (every rank must be started the same way)");
        }
      }
    }
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(i.store_lost(first_line(e.what())));
  }
}

void ProcessGroup::report_failure(const std::string& message) noexcept {
  Impl& i = *impl_;
  try {
    if (i.store->add("errors", 1) == 1)
      i.store->set("first_error", bytes_of(json{{"rank", rank()}, {"message", message}}.dump()));
    // The others' collectives fail now instead of at their timeout.
    i.gradient_sum.reset();
    i.gloo.reset();
    i.linger_while_others_read();
  } catch (...) {
  }
}

double ProcessGroup::allreduce_seconds() const { return impl_->allreduce_seconds; }
int64_t ProcessGroup::allreduce_calls() const { return impl_->allreduce_calls; }

}  // namespace convkit::dist
