// One exception type for everything a user can get wrong: a file, a flag, a checkpoint.
// main() catches it once and prints `convkit: <what>` on one line.
#pragma once

#include <stdexcept>
#include <string>

namespace convkit {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "FILE: reason" — the form every file error takes.
inline Error file_error(const std::string& file, const std::string& reason) { return Error(file + ": " + reason); }

// The first line of a message: LibTorch's errors append a multi-line backtrace to theirs.
inline std::string first_line(const std::string& message) { return message.substr(0, message.find('\n')); }

}  // namespace convkit
