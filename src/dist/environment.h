// Where this process stands in a distributed run, read from torchrun's environment variables
// (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK and the
// elastic agent's TORCHELASTIC_* ones), which `convkit train --nproc N` sets for its workers too.
#pragma once

#include <optional>
#include <string>

namespace convkit::dist {

struct Environment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  // processes on this machine: they share its threads
  int group_rank = 0;        // the machine's (torchrun's node) index
  std::string master_addr;   // where the rendezvous store listens
  int master_port = 0;
  bool agent_store = false;   // TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent hosts the store
  int restart_count = 0;      // TORCHELASTIC_RESTART_COUNT: the attempt whose keys this process uses
  std::string socket_ifname;  // GLOO_SOCKET_IFNAME: the network interfaces Gloo binds, comma-separated

  // "host:port" of the rendezvous store.
  std::string store_address() const { return master_addr + ":" + std::to_string(master_port); }
};

// The environment of a distributed run, or nullopt when neither RANK nor WORLD_SIZE is set (a
// single process). An Error naming the variable when one is missing, not an exact integer or
// out of range (RANK must be below WORLD_SIZE).
std::optional<Environment> environment_from_variables();

// The share of `threads` (0: all cores) one of `local_world_size` processes on a machine takes:
// at least one each.
int threads_per_process(int threads, int local_world_size);

// Whether `local_world_size` processes of `threads` threads each leave every thread a core of its
// own (of the cores this process may run on): only then may a rank busy-wait for the others.
bool each_thread_has_a_core(int threads, int local_world_size);

}  // namespace convkit::dist
