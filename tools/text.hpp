// text: helpers for the readable (non-JSON) reports of the tools, which must fit a terminal.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace linesman::tools {

// kReportWidth: the columns a readable report is wrapped to.
inline constexpr std::size_t kReportWidth = 100;

// fit: `s` cut to at most `width` characters, ending in "..." when it was cut (and there is room).
std::string fit(std::string_view s, std::size_t width);

// wrap: the words of `text` as lines of at most `width` columns, each starting with `indent` and
// ending in '\n'; a word longer than a line is cut with fit. Empty text gives an empty string.
std::string wrap(std::string_view text, std::string_view indent, std::size_t width);

// lower: `s` with ASCII letters lower-cased (names in configurations compare case-insensitively).
std::string lower(std::string_view s);

// iequals: `a` and `b` are the same text but for the case of ASCII letters.
bool iequals(std::string_view a, std::string_view b);

}  // namespace linesman::tools
