// For the readers that take a path: the fuzzer's input written to a file of this process's own,
// so that the whole reader runs (regular-file check and size bounds included).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>

inline std::filesystem::path fuzz_input_file(const uint8_t* data, size_t size, const char* extension) {
  static const std::filesystem::path file =
      std::filesystem::temp_directory_path() / ("convkit-fuzz-" + std::to_string(getpid()) + extension);
  std::FILE* f = std::fopen(file.c_str(), "wb");
  if (!f || std::fwrite(data, 1, size, f) != size || std::fclose(f) != 0) __builtin_trap();
  return file;
}
