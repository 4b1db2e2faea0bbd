// Text helpers: printf-style formatting and joining names.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

namespace convkit {

// printf-style formatting into a std::string (the tutorial's f-strings map onto it directly).
template <typename... Args>
std::string strprintf(const char* fmt, Args... args) {
  const int n = std::snprintf(nullptr, 0, fmt, args...);
  std::string out(static_cast<size_t>(n) + 1, '\0');
  std::snprintf(out.data(), out.size(), fmt, args...);
  out.pop_back();
  return out;
}

// "a, b, c" (or with another separator): lists of names in messages and help texts.
std::string join(const std::vector<std::string>& items, const std::string& separator = ", ");

}  // namespace convkit
