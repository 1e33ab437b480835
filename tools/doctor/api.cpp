#include "tools/doctor/api.hpp"

#include <set>

#include <httplib.h>

namespace linesman::tools::doctor {

namespace {

// split_url: "http://host:port/prefix" -> {"http://host:port", "/prefix"}.
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path_start == std::string::npos) {
    return {url, ""};
  }
  auto prefix = url.substr(path_start);
  while (!prefix.empty() && prefix.back() == '/') {
    prefix.pop_back();
  }
  // Accept both the base URL and one that already ends in /api.
  if (prefix.size() >= 4 && prefix.compare(prefix.size() - 4, 4, "/api") == 0) {
    prefix.resize(prefix.size() - 4);
  }
  return {url.substr(0, path_start), prefix};
}

bool get_array(httplib::Client& cli, const std::string& path, nlohmann::json& out,
               std::string& err) {
  out = nlohmann::json::array();
  std::string page = "1";
  for (int pages = 0; pages < 50 && !page.empty(); ++pages) {
    auto res = cli.Get((path + "?per_page=500&page=" + page).c_str());
    if (!res) {
      err = "GET " + path + ": " + httplib::to_string(res.error());
      return false;
    }
    if (res->status != 200) {
      err = "GET " + path + ": HTTP " + std::to_string(res->status);
      return false;
    }
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(res->body);
    } catch (const nlohmann::json::exception& e) {
      err = "GET " + path + ": not JSON: " + e.what();
      return false;
    }
    if (!j.is_array()) {
      err = "GET " + path + ": expected a JSON array";
      return false;
    }
    for (auto& item : j) {
      out.push_back(std::move(item));
    }
    page = res->get_header_value("X-Next-Page");
    if (page == "1" || page == "0") {
      page.clear();
    }
  }
  return true;
}

std::string str_field(const nlohmann::json& o, const char* k) {
  const auto it = o.find(k);
  return (it != o.end() && it->is_string()) ? it->get<std::string>() : std::string{};
}

std::string errors_text(const nlohmann::json& o) {
  std::string out;
  const auto it = o.find("error");
  if (it == o.end()) {
    return out;
  }
  if (it->is_string()) {
    return it->get<std::string>();
  }
  if (it->is_array()) {
    for (const auto& e : *it) {
      if (e.is_string()) {
        out += (out.empty() ? "" : "; ") + e.get<std::string>();
      }
    }
  }
  return out;
}

}  // namespace

api_snapshot fetch_api(const std::string& base_url, std::chrono::milliseconds timeout) {
  api_snapshot snap;
  if (base_url.rfind("http://", 0) != 0) {
    snap.error = "--api " + base_url + ": only http:// URLs are supported";
    return snap;
  }
  const auto [host, prefix] = split_url(base_url);
  httplib::Client cli(host);
  cli.set_connection_timeout(timeout);
  cli.set_read_timeout(timeout);
  cli.set_write_timeout(timeout);
  std::string err;
  if (!get_array(cli, prefix + "/api/entrypoints", snap.entrypoints, err) ||
      !get_array(cli, prefix + "/api/tcp/routers", snap.tcp_routers, err) ||
      !get_array(cli, prefix + "/api/tcp/services", snap.tcp_services, err) ||
      !get_array(cli, prefix + "/api/http/routers", snap.http_routers, err)) {
    snap.error = err;
  }
  return snap;
}

std::vector<finding> check_api(const traefik_config& cfg, const api_snapshot& api,
                               const std::string& base_url) {
  std::vector<finding> out;
  if (!api.error.empty()) {
    out.push_back({severity::error,
                   "api_unreachable",
                   {},
                   "",
                   "",
                   "",
                   "Traefik API at " + base_url + " could not be read: " + api.error,
                   "check --api (Traefik's api.insecure entrypoint is http://HOST:8080) and that "
                   "Traefik is running"});
    return out;
  }
  auto router_loc = [&](const std::string& qname, std::string& ep) -> source_loc {
    for (const auto& r : cfg.tcp_routers) {
      if (qualified(r.name, r.provider) == qname) {
        const auto eps = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
        ep = eps.empty() ? "" : eps.front();
        return r.loc;
      }
    }
    for (const auto& r : cfg.http_routers) {
      if (qualified(r.name, r.provider) == qname) {
        return r.loc;
      }
    }
    return {};
  };
  auto first_ep = [](const nlohmann::json& o) {
    const auto it = o.find("entryPoints");
    if (it != o.end() && it->is_array() && !it->empty() && it->front().is_string()) {
      return it->front().get<std::string>();
    }
    return std::string{};
  };
  auto status_findings = [&](const nlohmann::json& arr, const char* kind, bool is_router) {
    for (const auto& o : arr) {
      if (!o.is_object()) {
        continue;
      }
      const auto status = str_field(o, "status");
      if (status.empty() || status == "enabled") {
        continue;
      }
      const auto name = str_field(o, "name");
      std::string ep = first_ep(o);
      source_loc loc;
      if (is_router) {
        std::string file_ep;
        loc = router_loc(name, file_ep);
        if (ep.empty()) {
          ep = file_ep;
        }
      } else {
        for (const auto& s : cfg.tcp_services) {
          if (qualified(s.name, s.provider) == name) {
            loc = s.loc;
          }
        }
      }
      const auto errs = errors_text(o);
      finding f{status == "disabled" ? severity::error : severity::warning,
                is_router ? "api_router_status" : "api_service_status",
                loc,
                ep,
                is_router ? name : "",
                is_router ? "" : name,
                std::string("Traefik reports ") + kind + " " + name + " as " + status +
                    (errs.empty() ? "" : ": " + errs),
                status == "disabled" ? "fix the error Traefik names; a disabled " +
                                           std::string(kind) + " serves nothing"
                                     : "fix the warning Traefik names"};
      out.push_back(std::move(f));
    }
  };
  status_findings(api.tcp_routers, "TCP router", true);
  status_findings(api.tcp_services, "TCP service", false);
  status_findings(api.http_routers, "HTTP router", true);

  std::set<std::string> loaded;
  for (const auto& o : api.tcp_routers) {
    if (o.is_object()) {
      loaded.insert(str_field(o, "name"));
    }
  }
  for (const auto& r : cfg.tcp_routers) {
    const auto q = qualified(r.name, r.provider);
    if (loaded.count(q) != 0 || r.provider == "kubernetescrd") {
      continue;  // Traefik names a CRD router namespace-name-HASH, which we cannot compute
    }
    const auto eps = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
    out.push_back({severity::error, "api_router_not_loaded", r.loc, eps.empty() ? "" : eps.front(),
                   q, "",
                   "TCP router " + q +
                       " is in the configuration but the running Traefik does "
                       "not list it (not loaded)",
                   "check that Traefik reads this file (providers.file), look for a parse error in "
                   "Traefik's log, and that the file has been saved where the provider watches"});
  }
  std::set<std::string> api_eps;
  for (const auto& o : api.entrypoints) {
    if (o.is_object()) {
      api_eps.insert(str_field(o, "name"));
    }
  }
  for (const auto& e : cfg.entrypoints) {
    if (api_eps.count(e.name) == 0) {
      out.push_back({severity::warning, "api_entrypoint_missing", e.loc, e.name, "", "",
                     "entrypoint " + e.name +
                         " is in the static configuration but the running "
                         "Traefik does not have it",
                     "restart Traefik after changing the static configuration (it is read only "
                     "at start-up), and check it reads this file"});
    }
  }
  return out;
}

}  // namespace linesman::tools::doctor
