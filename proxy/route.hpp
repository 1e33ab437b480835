// route: SNI -> upstream matching for one listener (exact names and "*.suffix" wildcards).
#pragma once

#include "proxy/config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::proxy {

// normalize_sni: lower-case ASCII, one trailing dot removed. Used for patterns and for names seen.
std::string normalize_sni(std::string_view name);

// route_table: built once per listener (control plane), then read-only and shared by workers.
// Exact names win over wildcards; among wildcards the longest suffix wins; a wildcard matches one
// or more labels in front of its suffix ("*.example.com" matches "a.example.com" and
// "a.b.example.com", never "example.com" itself), like Traefik's HostSNI wildcard.
class route_table {
 public:
  route_table() = default;
  explicit route_table(const std::vector<route_config>& routes);

  // match: the route for `sni`, or nullptr (then the listener's default upstream applies).
  // The pointer lives as long as the table.
  [[nodiscard]] const route_config* match(std::string_view sni) const;
  [[nodiscard]] bool empty() const { return exact_.empty() && wildcard_.empty(); }

 private:
  struct entry {
    std::string key;  // normalized name, or the suffix with its dot (".example.com")
    route_config route;
  };
  std::vector<entry> exact_;
  std::vector<entry> wildcard_;  // sorted longest suffix first
};

}  // namespace linesman::proxy
