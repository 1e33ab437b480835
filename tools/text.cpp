#include "tools/text.hpp"

#include <algorithm>
#include <cctype>

namespace linesman::tools {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string fit(std::string_view s, std::size_t width) {
  if (s.size() <= width) {
    return std::string(s);
  }
  if (width <= 3) {
    return std::string(s.substr(0, width));
  }
  return std::string(s.substr(0, width - 3)) + "...";
}

std::string wrap(std::string_view text, std::string_view indent, std::size_t width) {
  std::string out;
  std::string line(indent);
  bool empty = true;
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find(' ', pos);
    if (end == std::string_view::npos) {
      end = text.size();
    }
    std::string word = fit(text.substr(pos, end - pos), width - indent.size());
    pos = end + 1;
    if (word.empty()) {
      continue;
    }
    if (!empty && line.size() + 1 + word.size() > width) {
      out += line + "\n";
      line = std::string(indent);
      empty = true;
    }
    line += (empty ? "" : " ") + word;
    empty = false;
  }
  if (!empty) {
    out += line + "\n";
  }
  return out;
}

}  // namespace linesman::tools
