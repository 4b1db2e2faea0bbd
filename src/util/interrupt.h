// Ctrl-C and SIGTERM: long work stops at its next safe point (after the current training step
// or batch), so that every file it writes stays whole; a second signal ends the process at once.
#pragma once

#include <string>

#include "util/error.h"

namespace convkit {

// What a stopped run throws; main() exits with 128 + the signal's number.
class Interrupted : public Error {
 public:
  Interrupted(int signal, const std::string& what) : Error(what), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Installs the handlers for SIGINT and SIGTERM (main does, once).
void install_interrupt_handlers();

// The signal that asked to stop, or 0.
int interrupt_requested();

// Throws Interrupted ("interrupted by SIGINT") when a signal asked to stop.
void stop_if_interrupted();

// "SIGINT", "SIGTERM", ...
std::string signal_name(int signal);

}  // namespace convkit
