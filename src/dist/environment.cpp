#include "dist/environment.h"

#include <sched.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>

#include "util/error.h"
#include "util/runtime.h"

namespace convkit::dist {
namespace {

constexpr int kMaxWorldSize = 65536;

const char* variable(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

std::string required(const char* name) {
  const char* value = variable(name);
  if (!value)
    throw Error(std::string("environment variable ") + name + " is not set (a distributed run needs RANK, " +
                "WORLD_SIZE, MASTER_ADDR and MASTER_PORT)");
  return value;
}

int integer(const char* name, const std::string& text, int lo, int hi) {
  int v = 0;
  const char* end = text.data() + text.size();
  const auto [stop, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || stop != end || v < lo || v > hi) {
    throw Error(std::string("environment variable ") + name + "='" + text + "' must be an integer from " +
                std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

int optional_integer(const char* name, int fallback, int lo, int hi) {
  const char* value = variable(name);
  return value ? integer(name, value, lo, hi) : fallback;
}

}  // namespace

std::optional<Environment> environment_from_variables() {
  if (!variable("RANK") && !variable("WORLD_SIZE")) return std::nullopt;
  Environment e;
  e.world_size = integer("WORLD_SIZE", required("WORLD_SIZE"), 1, kMaxWorldSize);
  e.rank = integer("RANK", required("RANK"), 0, e.world_size - 1);
  e.master_addr = required("MASTER_ADDR");
  e.master_port = integer("MASTER_PORT", required("MASTER_PORT"), 1, 65535);
  e.local_world_size = optional_integer("LOCAL_WORLD_SIZE", e.world_size, 1, e.world_size);
  e.local_rank = optional_integer("LOCAL_RANK", e.rank % e.local_world_size, 0, e.local_world_size - 1);
  e.group_rank = optional_integer("GROUP_RANK", 0, 0, kMaxWorldSize);
  const char* agent = variable("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && std::string(agent) == "True";  // Python's str(True), as torchrun writes it
  e.restart_count = optional_integer("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 30);
  if (const char* ifname = variable("GLOO_SOCKET_IFNAME")) e.socket_ifname = ifname;
  return e;
}

int threads_per_process(int threads, int local_world_size) {
  return std::max(1, thread_budget(threads) / std::max(1, local_world_size));
}

bool each_thread_has_a_core(int threads, int local_world_size) {
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return false;
  return static_cast<int64_t>(threads) * local_world_size <= CPU_COUNT(&allowed);
}

}  // namespace convkit::dist
