#include "dist/launcher.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>

#include "util/error.h"
#include "util/interrupt.h"

extern char** environ;

namespace convkit::dist {
namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kDistributedVariables[] = {"RANK",
                                                 "WORLD_SIZE",
                                                 "LOCAL_RANK",
                                                 "LOCAL_WORLD_SIZE",
                                                 "GROUP_RANK",
                                                 "MASTER_ADDR",
                                                 "MASTER_PORT",
                                                 "TORCHELASTIC_USE_AGENT_STORE",
                                                 "TORCHELASTIC_RESTART_COUNT"};

// A port nothing listens on now; rank 0 binds it a moment later (as torchrun's free-port choice).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("--nproc: cannot open a socket (") + std::strerror(errno) + ")");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  close(fd);
  if (!ok) throw Error(std::string("--nproc: cannot find a free port on 127.0.0.1 (") + std::strerror(errno) + ")");
  return ntohs(addr.sin_port);
}

bool is_distributed_variable(const std::string& entry) {
  for (const char* name : kDistributedVariables)
    if (entry.rfind(std::string(name) + "=", 0) == 0) return true;
  return false;
}

std::vector<std::string> worker_environment(int rank, int nproc, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!is_distributed_variable(*e)) env.emplace_back(*e);
  const std::string n = std::to_string(nproc), r = std::to_string(rank);
  for (const std::string& v :
       {"RANK=" + r, "LOCAL_RANK=" + r, "WORLD_SIZE=" + n, "LOCAL_WORLD_SIZE=" + n, std::string("GROUP_RANK=0"),
        std::string("MASTER_ADDR=127.0.0.1"), "MASTER_PORT=" + std::to_string(port)})
    env.push_back(v);
  return env;
}

std::vector<char*> pointers(std::vector<std::string>& strings) {
  std::vector<char*> p;
  for (std::string& s : strings) p.push_back(s.data());
  p.push_back(nullptr);
  return p;
}

std::string how_it_ended(int status) {
  if (WIFSIGNALED(status)) return "was killed by " + signal_name(WTERMSIG(status));
  return "exited with status " + std::to_string(WEXITSTATUS(status));
}

int exit_code_of(int status) { return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status); }

struct Workers {
  std::vector<pid_t> pids;  // 0 once reaped
  pid_t group = 0;          // their process group: a signal reaches all of them at once
  size_t running = 0;

  int rank_of(pid_t pid) const {
    for (size_t r = 0; r < pids.size(); ++r)
      if (pids[r] == pid) return static_cast<int>(r);
    return -1;
  }
  void signal_all(int sig) const {
    if (group > 0 && running > 0) kill(-group, sig);
  }
};

void start(Workers& w, const std::vector<std::string>& args, int nproc, int port) {
  const pid_t launcher = getpid();
  for (int rank = 0; rank < nproc; ++rank) {
    std::vector<std::string> argv = args, env = worker_environment(rank, nproc, port);
    std::vector<char*> argv_p = pointers(argv), env_p = pointers(env);
    const pid_t pid = fork();
    if (pid < 0) {
      w.signal_all(SIGKILL);
      throw Error(std::string("--nproc: cannot start worker ") + std::to_string(rank) + " (" + std::strerror(errno) +
                  ")");
    }
    if (pid == 0) {
      setpgid(0, w.group);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // a worker never outlives its launcher
      if (getppid() != launcher) _exit(1);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      execve("/proc/self/exe", argv_p.data(), env_p.data());
      const char message[] = "convkit: --nproc: cannot start a worker process\n";
      (void)!write(2, message, sizeof(message) - 1);
      _exit(127);
    }
    setpgid(pid, w.group);  // also here: whichever of the two runs first
    if (w.group == 0) w.group = pid;
    w.pids.push_back(pid);
    ++w.running;
  }
}

// Reaps the workers that ended; returns the first one's (rank, status) that failed, if any.
void reap(Workers& w, int& failed_rank, int& failed_status) {
  int status = 0;
  for (pid_t pid; w.running > 0 && (pid = waitpid(-w.group, &status, WNOHANG)) > 0;) {
    const int rank = w.rank_of(pid);
    if (rank < 0) continue;
    w.pids[rank] = 0;
    --w.running;
    const bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!ok && failed_rank < 0) {
      failed_rank = rank;
      failed_status = status;
    }
  }
}

}  // namespace

std::vector<std::string> without_nproc_flag(const std::vector<std::string>& argv) {
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i] == "--nproc") {
      ++i;
    } else if (argv[i].rfind("--nproc=", 0) != 0) {
      out.push_back(argv[i]);
    }
  }
  return out;
}

int run_local_workers(const std::vector<std::string>& args, int nproc, std::chrono::milliseconds timeout) {
  Workers w;
  start(w, args, nproc, free_port());
  int failed_rank = -1, failed_status = 0, forwarded = 0;
  Clock::time_point give_up{};  // once a worker failed: when the rest are ended
  bool terminated = false;
  while (w.running > 0) {
    reap(w, failed_rank, failed_status);
    const int sig = interrupt_requested();
    if (sig != 0 && forwarded == 0) {
      forwarded = sig;
      w.signal_all(sig);  // each stops after its step; --resume continues from the last epoch
    }
    if (failed_rank >= 0 && give_up == Clock::time_point{}) {
      if (forwarded == 0)  // else the workers stop because they were told to
        std::cerr << "convkit: rank " << failed_rank << " " << how_it_ended(failed_status)
                  << (w.running > 0 ? "; stopping the other workers" : "") << "\n";
      give_up = Clock::now() + timeout + std::chrono::seconds(5);
    }
    if (give_up != Clock::time_point{} && Clock::now() > give_up && w.running > 0) {
      w.signal_all(terminated ? SIGKILL : SIGTERM);
      if (!terminated) give_up = Clock::now() + std::chrono::seconds(5);
      terminated = true;
    }
    if (w.running > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (forwarded != 0) return 128 + forwarded;
  return failed_rank < 0 ? 0 : std::max(1, exit_code_of(failed_status));
}

}  // namespace convkit::dist
