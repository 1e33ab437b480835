#include "proxy/route.hpp"

#include <algorithm>

namespace linesman::proxy {

std::string normalize_sni(std::string_view name) {
  if (!name.empty() && name.back() == '.') {
    name.remove_suffix(1);
  }
  std::string out(name);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

route_table::route_table(const std::vector<route_config>& routes) {
  for (const auto& r : routes) {
    std::string key = normalize_sni(r.sni);
    if (key.size() > 2 && key[0] == '*' && key[1] == '.') {
      wildcard_.push_back({key.substr(1), r});
    } else {
      exact_.push_back({std::move(key), r});
    }
  }
  std::stable_sort(wildcard_.begin(), wildcard_.end(),
                   [](const entry& a, const entry& b) { return a.key.size() > b.key.size(); });
}

const route_config* route_table::match(std::string_view sni) const {
  if (sni.empty()) {
    return nullptr;
  }
  const std::string name = normalize_sni(sni);
  for (const auto& e : exact_) {
    if (e.key == name) {
      return &e.route;
    }
  }
  for (const auto& e : wildcard_) {
    // At least one character before the ".suffix", and no empty label.
    if (name.size() > e.key.size() && name.ends_with(e.key) &&
        name[name.size() - e.key.size() - 1] != '.' && name.front() != '.') {
      return &e.route;
    }
  }
  return nullptr;
}

}  // namespace linesman::proxy
