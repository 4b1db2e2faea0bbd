// `convkit train --nproc N`: N worker processes of this program on this machine, given
// torchrun's environment variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, GROUP_RANK,
// MASTER_ADDR=127.0.0.1, MASTER_PORT=a free port, where rank 0 hosts the store).
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace convkit::dist {

// Runs the workers with `args` (argv, the launcher's own flag removed) and waits for them. A
// SIGINT or SIGTERM the launcher gets is passed on to every worker. When a worker fails, the
// others get `timeout` plus a margin to notice and stop by themselves, then are ended; a worker
// cannot outlive the launcher. Returns 0 when every worker succeeded, 128 + the signal when
// stopped by one, else the first failed worker's exit code.
int run_local_workers(const std::vector<std::string>& args, int nproc, std::chrono::milliseconds timeout);

// `argv` without `--nproc N` / `--nproc=N`.
std::vector<std::string> without_nproc_flag(const std::vector<std::string>& argv);

}  // namespace convkit::dist
