#include "util/interrupt.h"

#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstring>

namespace convkit {
namespace {

std::atomic<int> requested{0};

extern "C" void on_signal(int signal) {
  if (requested.exchange(signal) != 0) _exit(128 + signal);  // the second one: at once
}

}  // namespace

void install_interrupt_handlers() {
  struct sigaction action {};
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: a process waiting (for a child, say) wakes up to see the request.
  action.sa_flags = 0;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

int interrupt_requested() { return requested.load(); }

void stop_if_interrupted() {
  if (const int signal = requested.load()) throw Interrupted(signal, "interrupted by " + signal_name(signal));
}

std::string signal_name(int signal) {
  if (signal == SIGINT) return "SIGINT";
  if (signal == SIGTERM) return "SIGTERM";
  if (const char* abbreviation = sigabbrev_np(signal)) return std::string("SIG") + abbreviation;
  return "signal " + std::to_string(signal);
}

}  // namespace convkit
