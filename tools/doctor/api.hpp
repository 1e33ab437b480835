// doctor/api: `linesman doctor --api URL`, what the running Traefik says about the routers and
// services it loaded (GET /api/entrypoints, /api/tcp/routers, /api/tcp/services,
// /api/http/routers), compared with the configuration files.
#pragma once

#include "tools/doctor/checks.hpp"

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools::doctor {

// api_snapshot: the arrays Traefik returned; `error` is set when the API could not be read.
struct api_snapshot {
  nlohmann::json entrypoints = nlohmann::json::array();
  nlohmann::json tcp_routers = nlohmann::json::array();
  nlohmann::json tcp_services = nlohmann::json::array();
  nlohmann::json http_routers = nlohmann::json::array();
  std::string error;
};

// fetch_api: GET the four endpoints (following X-Next-Page, at most 50 pages each). Never throws;
// only http:// URLs are supported (Traefik's API is usually the insecure :8080 entrypoint).
api_snapshot fetch_api(const std::string& base_url, std::chrono::milliseconds timeout);

// check_api: routers/services whose status is not "enabled" (with Traefik's error text), routers
// in the files that the API does not list, entrypoints the running Traefik does not have.
std::vector<finding> check_api(const traefik_config& cfg, const api_snapshot& api,
                               const std::string& base_url);

}  // namespace linesman::tools::doctor
