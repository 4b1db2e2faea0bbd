// The HTML pages convkit writes (a run's report, a comparison, a sweep's leaderboard) share
// one style sheet and one escape.
#pragma once

#include <filesystem>
#include <string>

namespace convkit::report {

// Text made safe inside HTML elements and attribute values.
std::string html_escape(const std::string& text);

// "<!doctype html>...<body>" with the shared style and `title` (escaped here).
std::string html_page_start(const std::string& title);
inline constexpr const char* kHtmlPageEnd = "</body></html>\n";

// An <img> embedding the PNG file's bytes, so the page is self-contained.
std::string embedded_png(const std::filesystem::path& png, const std::string& alt);

}  // namespace convkit::report
