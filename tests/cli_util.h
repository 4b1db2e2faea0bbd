// Running the convkit binary from a test, as a user would: its exit code, stdout and stderr.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "test_util.h"
#include "util/files.h"

namespace convkit::testing {

struct RunOutput {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

inline RunOutput run_convkit(const std::string& args) {
  TempDir tmp;
  const std::string cmd = std::string(CONVKIT_BIN) + " " + args + " > " + (tmp / "out").string() + " 2> " +
                          (tmp / "err").string() + " < /dev/null";
  const int status = std::system(cmd.c_str());
  auto slurp = [](const std::filesystem::path& p) {
    const auto b = read_file_bytes(p);
    return std::string(b.begin(), b.end());
  };
  return {WEXITSTATUS(status), slurp(tmp / "out"), slurp(tmp / "err")};
}

inline nlohmann::json read_json(const std::filesystem::path& p) {
  const auto b = read_file_bytes(p);
  return nlohmann::json::parse(b.begin(), b.end());
}

inline void expect_one_line_error(const RunOutput& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << "stderr: " << r.err;
}

}  // namespace convkit::testing
