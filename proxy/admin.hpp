// admin: the read-only admin endpoint (cpp-httplib on its own thread): /api/connections,
// /api/listeners, /healthz and /metrics over a live_hub. It never touches a connection: it reads
// the published snapshots (proxy/live.hpp).
#pragma once

#include "proxy/config.hpp"
#include "proxy/live.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::proxy {

// connection_filter: the query filters of GET /api/connections.
struct connection_filter {
  std::optional<live_phase> phase;
  std::optional<double> older_than_seconds;  // age since accept strictly above this
  std::optional<std::string> sni;            // exact (case-insensitive) or "*.suffix"
};

// connections_json: the /api/connections body: the connections matching `f`, oldest first.
nlohmann::json connections_json(std::vector<live_copy> open, const connection_filter& f);

class admin_server {
 public:
  // admin_server: binds cfg.listen (listen_error naming the address on failure), prints
  // "linesman: admin on ADDR" on stderr and serves on its own thread until destroyed. `hub`
  // must outlive this object.
  admin_server(const admin_config& cfg, const live_hub& hub);
  ~admin_server();
  admin_server(const admin_server&) = delete;
  admin_server& operator=(const admin_server&) = delete;

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

}  // namespace linesman::proxy
