#include "tools/doctor/checks.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace linesman::tools::doctor {

namespace fs = std::filesystem;

std::string_view severity_name(severity s) {
  switch (s) {
    case severity::error:
      return "error";
    case severity::warning:
      return "warning";
    case severity::info:
      return "info";
  }
  return "error";
}

std::string qualified(const std::string& name, const std::string& provider) {
  return name.find('@') != std::string::npos ? name : name + "@" + provider;
}

std::optional<host_port> parse_host_port(std::string_view address, std::string& why) {
  host_port out;
  std::string_view a = address;
  if (a.empty()) {
    why = "the address is empty";
    return std::nullopt;
  }
  if (a.find("://") != std::string_view::npos) {
    why = "'" + std::string(address) + "' is a URL; a TCP address is host:port without a scheme";
    return std::nullopt;
  }
  if (const auto slash = a.rfind('/'); slash != std::string_view::npos) {
    const auto proto = a.substr(slash + 1);
    if (proto == "udp") {
      out.udp = true;
    } else if (proto != "tcp") {
      why = "unknown protocol suffix '/" + std::string(proto) + "' (use /tcp or /udp)";
      return std::nullopt;
    }
    a = a.substr(0, slash);
  }
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos) {
      why = "missing ']' in an IPv6 address";
      return std::nullopt;
    }
    out.host = std::string(a.substr(1, close - 1));
    const auto rest = a.substr(close + 1);
    if (rest.empty()) {
      why = "no port: '" + std::string(address) + "' needs ':PORT'";
      return std::nullopt;
    }
    if (rest.front() != ':') {
      why = "unexpected text after ']'";
      return std::nullopt;
    }
    port = rest.substr(1);
  } else {
    const auto colon = a.rfind(':');
    if (colon == std::string_view::npos) {
      why = "no port: '" + std::string(address) + "' needs ':PORT'";
      return std::nullopt;
    }
    if (a.find(':') != colon) {
      why = "an IPv6 address must be written in brackets: [addr]:port";
      return std::nullopt;
    }
    out.host = std::string(a.substr(0, colon));
    port = a.substr(colon + 1);
  }
  out.port_text = std::string(port);
  if (port.empty()) {
    why = "no port after ':' in '" + std::string(address) + "'";
    return std::nullopt;
  }
  unsigned value = 0;
  const auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size()) {
    why = "port '" + std::string(port) + "' is not a number (named ports are not resolved)";
    return std::nullopt;
  }
  if (value == 0 || value > 65535) {
    why = "port " + std::string(port) + " is outside 1-65535";
    return std::nullopt;
  }
  out.port = static_cast<std::uint16_t>(value);
  if (out.host.find_first_of(" \t/") != std::string::npos) {
    why = "host '" + out.host + "' contains a space or '/'";
    return std::nullopt;
  }
  return out;
}

std::vector<std::string> router_entrypoints(const traefik_config& cfg, bool has_list,
                                            const std::vector<std::string>& list) {
  if (has_list && !list.empty()) {
    return list;
  }
  std::vector<std::string> defaults;
  std::vector<std::string> all;
  for (const auto& e : cfg.entrypoints) {
    std::string why;
    auto hp = parse_host_port(e.address, why);
    if (hp && hp->udp) {
      continue;
    }
    all.push_back(e.name);
    if (e.as_default) {
      defaults.push_back(e.name);
    }
  }
  return defaults.empty() ? all : defaults;
}

const tcp_service* find_service(const traefik_config& cfg, const std::string& ref,
                                const std::string& router_provider, bool& foreign) {
  foreign = false;
  std::string name = ref;
  std::string provider = router_provider;
  if (const auto at = ref.find('@'); at != std::string::npos) {
    name = ref.substr(0, at);
    provider = ref.substr(at + 1);
  }
  if (provider != "file" && provider != "docker") {
    foreign = true;
    return nullptr;
  }
  for (const auto& s : cfg.tcp_services) {
    if (s.name == name && s.provider == provider) {
      return &s;
    }
  }
  return nullptr;
}

rule_syntax effective_syntax(const traefik_config& cfg, const tcp_router& r, rule_syntax fallback) {
  const auto& s = !r.rule_syntax.empty() ? r.rule_syntax : cfg.default_rule_syntax;
  if (s == "v2") {
    return rule_syntax::v2;
  }
  if (s == "v3") {
    return rule_syntax::v3;
  }
  return fallback;
}

namespace {

bool wildcard_host(const std::string& h) { return h.empty() || h == "0.0.0.0" || h == "::"; }

bool hosts_overlap(const std::string& a, const std::string& b) {
  return wildcard_host(a) || wildcard_host(b) || a == b;
}

// rule_col_loc: the file position of column `col` of the rule (exact for single-line rules
// without escapes; without a known start the column is left out and the message names it).
source_loc rule_col_loc(const tcp_router& r, int col) {
  source_loc l = r.rule_loc;
  l.col = r.rule_col > 0 ? r.rule_col + col - 1 : 0;
  return l;
}

}  // namespace

std::vector<finding> check_config(const traefik_config& cfg, rule_syntax fallback) {
  std::vector<finding> out;
  std::map<std::string, const entrypoint*> eps;
  for (const auto& e : cfg.entrypoints) {
    eps[e.name] = &e;
  }

  // Entrypoint addresses, and two entrypoints on one address (family 5).
  std::vector<std::pair<const entrypoint*, host_port>> parsed_eps;
  for (const auto& e : cfg.entrypoints) {
    std::string why;
    auto hp = parse_host_port(e.address, why);
    if (!hp) {
      out.push_back({severity::error, "entrypoint_address_invalid", e.address_loc, e.name, "", "",
                     "entrypoint " + e.name + " address '" + e.address + "': " + why +
                         "; Traefik does not start",
                     "write the address as \":PORT\" or \"IP:PORT\", e.g. address: \":5432\""});
      continue;
    }
    for (const auto& [other, ohp] : parsed_eps) {
      if (ohp.port == hp->port && ohp.udp == hp->udp && hosts_overlap(ohp.host, hp->host)) {
        out.push_back({severity::error, "entrypoint_address_conflict", e.address_loc, e.name, "",
                       "",
                       "entrypoints " + other->name + " (" + other->address + ", " +
                           other->address_loc.str() + ") and " + e.name + " (" + e.address +
                           ") listen on the same port " + hp->port_text +
                           "; Traefik cannot bind the second one",
                       "give each entrypoint its own port, or attach the routers of both to one "
                       "entrypoint"});
      }
    }
    parsed_eps.emplace_back(&e, *hp);
  }

  if (!cfg.have_static && !cfg.tcp_routers.empty()) {
    out.push_back({severity::info,
                   "static_missing",
                   {},
                   "",
                   "",
                   "",
                   "no static configuration was read, so entrypoint names and ports were not "
                   "checked",
                   "pass --static /etc/traefik/traefik.yml"});
  }

  // Which SNI each TLS router claims on each entrypoint (family 4), and the TCP catch-alls.
  struct claim {
    const tcp_router* router;
    bool passthrough;
  };
  std::map<std::pair<std::string, std::string>, std::vector<claim>> sni_claims;

  for (const auto& r : cfg.tcp_routers) {
    const auto rq = qualified(r.name, r.provider);
    const auto attached = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
    const std::string ep0 = attached.empty() ? std::string{} : attached.front();
    auto add = [&](severity s, std::string code, source_loc loc, std::string ep, std::string msg,
                   std::string fix, std::string svc = {}) {
      if (loc.file.empty()) {
        loc = r.loc;
      }
      out.push_back({s, std::move(code), std::move(loc), std::move(ep), rq, std::move(svc),
                     std::move(msg), std::move(fix)});
    };

    // Family 1: entrypoints.
    if (cfg.have_static) {
      for (const auto& name : r.entry_points) {
        auto it = eps.find(name);
        if (it == eps.end()) {
          std::string fix = "define it in the static configuration (entryPoints." + name +
                            ".address: \":PORT\", then restart Traefik) or use one of:";
          std::string near;
          for (const auto& e : cfg.entrypoints) {
            fix += " " + e.name;
            std::string a = e.name;
            std::string b = name;
            std::transform(a.begin(), a.end(), a.begin(), ::tolower);
            std::transform(b.begin(), b.end(), b.begin(), ::tolower);
            if (a == b) {
              near = e.name;
            }
          }
          if (cfg.entrypoints.empty()) {
            fix = "the static configuration defines no entrypoints: add entryPoints." + name +
                  ".address: \":PORT\"";
          }
          if (!near.empty()) {
            fix = "entrypoint names are case-sensitive: write " + near;
          }
          add(severity::error, "entrypoint_missing", r.entry_points_loc, name,
              "router " + rq + " uses entrypoint " + name +
                  ", which the static configuration does not define; Traefik skips the router "
                  "on it and nothing listens",
              fix);
          continue;
        }
        std::string why;
        auto hp = parse_host_port(it->second->address, why);
        if (hp && hp->udp) {
          add(severity::error, "entrypoint_udp", r.entry_points_loc, name,
              "TCP router " + rq + " is attached to UDP entrypoint " + name + " (" +
                  it->second->address + ")",
              "attach the router to a TCP entrypoint, or move it to udp.routers");
        }
      }
    }

    // Family 2: the rule.
    std::optional<rule_expr> expr;
    if (r.rule.empty()) {
      add(severity::error, "rule_missing", r.loc, ep0,
          "router " + rq + " has no rule; Traefik rejects it",
          "add rule: \"HostSNI(`example.com`)\" (with tls) or rule: \"HostSNI(`*`)\"");
    } else {
      auto parsed = parse_rule(r.rule);
      if (parsed.error) {
        add(severity::error, "rule_parse_error", rule_col_loc(r, parsed.error->col), ep0,
            "rule of " + rq + " does not parse at column " + std::to_string(parsed.error->col) +
                ": " + parsed.error->message + " in: " + r.rule,
            "fix the rule syntax; Traefik drops a router whose rule does not parse");
      } else {
        expr = std::move(parsed.expr);
      }
    }
    if (!r.rule_syntax.empty() && r.rule_syntax != "v2" && r.rule_syntax != "v3") {
      add(severity::error, "rule_syntax_invalid", r.rule_loc, ep0,
          "router " + rq + " has ruleSyntax '" + r.rule_syntax + "'", "use ruleSyntax: v2 or v3");
    }
    if (expr) {
      const auto syntax = effective_syntax(cfg, r, fallback);
      for (const auto& p : check_tcp_rule(*expr, syntax)) {
        const bool http = p.what == rule_problem::kind::http_matcher;
        add(severity::error, http ? "rule_http_matcher" : "rule_invalid", rule_col_loc(r, p.col),
            ep0, "rule of " + rq + ": " + p.message, p.fix);
      }
      const auto sni = sni_info(*expr);
      if (sni.domain_sni && !r.tls.present) {
        add(severity::error, "hostsni_without_tls", r.rule_loc, ep0,
            "router " + rq +
                " matches a domain with HostSNI but has no tls section; Traefik "
                "only reads the SNI of TLS connections, so it drops the router and closes "
                "connections silently",
            "add tls: {} (terminate at Traefik) or tls: {passthrough: true} (the backend "
            "terminates); without TLS only HostSNI(`*`) works");
      }
      if (r.tls.present) {
        for (const auto& ep : attached) {
          for (const auto& s : sni.literals) {
            sni_claims[{ep, s}].push_back({&r, r.tls.passthrough});
          }
        }
      }
      if (sni.catch_all && !r.tls.present) {
        for (const auto& ep : attached) {
          for (const auto& h : cfg.http_routers) {
            const auto heps = router_entrypoints(cfg, h.has_entry_points, h.entry_points);
            if (std::find(heps.begin(), heps.end(), ep) != heps.end()) {
              add(severity::error, "catch_all_shadows_http", r.rule_loc, ep,
                  "non-TLS TCP router " + rq + " with HostSNI(`*`) on entrypoint " + ep +
                      " takes every connection, so HTTP router " + qualified(h.name, h.provider) +
                      " (" + h.loc.str() + ") on the same entrypoint never sees a request",
                  "give the TCP router its own entrypoint (port), or match a domain with tls "
                  "enabled");
              break;
            }
          }
        }
      }
      // TCP routers are tried before HTTP routers on a shared entrypoint, so a TLS catch-all
      // takes every TLS connection; plaintext HTTP still reaches the HTTP routers.
      if (sni.catch_all && r.tls.present) {
        for (const auto& ep : attached) {
          for (const auto& h : cfg.http_routers) {
            const auto heps = router_entrypoints(cfg, h.has_entry_points, h.entry_points);
            if (h.tls && std::find(heps.begin(), heps.end(), ep) != heps.end()) {
              add(severity::warning, "tls_catch_all_shadows_https", r.rule_loc, ep,
                  "TLS TCP router " + rq + " with HostSNI(`*`) on entrypoint " + ep +
                      " takes every TLS connection, so HTTPS router " +
                      qualified(h.name, h.provider) + " (" + h.loc.str() +
                      ") on the same entrypoint never sees a request",
                  "match the TCP router's own domains with HostSNI(`name`) instead of `*`, or "
                  "give it its own entrypoint");
              break;
            }
          }
        }
      }
    }

    // Family 3: the service.
    if (r.service.empty()) {
      if (r.provider == "file") {
        add(severity::error, "service_missing", r.loc, ep0,
            "router " + rq + " names no service; Traefik rejects it",
            "add service: <name of a tcp.services entry>");
      }
    } else {
      bool foreign = false;
      const auto* s = find_service(cfg, r.service, r.provider, foreign);
      if (s == nullptr && !foreign) {
        std::string fix = "define tcp.services." + r.service +
                          " with loadBalancer.servers: [{address: \"host:port\"}]";
        for (const auto& other : cfg.tcp_services) {
          std::string a = other.name;
          std::string b = r.service.substr(0, r.service.find('@'));
          std::transform(a.begin(), a.end(), a.begin(), ::tolower);
          std::transform(b.begin(), b.end(), b.begin(), ::tolower);
          if (a == b || (a.find(b) != std::string::npos && !b.empty()) ||
              (b.find(a) != std::string::npos && !a.empty())) {
            fix = "did you mean " + other.name + " (" + other.loc.str() + ")?";
          }
        }
        add(severity::error, "service_not_found", r.service_loc, ep0,
            "router " + rq + " points at TCP service " + r.service +
                ", which does not exist; Traefik disables the router",
            fix, qualified(r.service, r.provider));
      }
    }

    // Family 4: passthrough with TLS settings that only apply when Traefik terminates.
    if (r.tls.passthrough &&
        (!r.tls.cert_resolver.empty() || !r.tls.options.empty() || r.tls.has_domains)) {
      std::string what;
      if (!r.tls.cert_resolver.empty()) {
        what += "certResolver " + r.tls.cert_resolver;
      }
      if (!r.tls.options.empty()) {
        what += (what.empty() ? "" : ", ") + std::string("options ") + r.tls.options;
      }
      if (r.tls.has_domains) {
        what += (what.empty() ? "" : ", ") + std::string("domains");
      }
      add(severity::warning, "passthrough_tls_ignored", r.tls.extra_loc, ep0,
          "router " + rq + " has tls.passthrough: true together with " + what +
              "; with passthrough Traefik never terminates TLS, so these are ignored (no "
              "certificate is issued or served, the backend's certificate is what clients see)",
          "remove " + what + " from this router, or drop passthrough to let Traefik terminate");
    }
  }

  for (const auto& [key, claims] : sni_claims) {
    const tcp_router* pt = nullptr;
    const tcp_router* term = nullptr;
    for (const auto& c : claims) {
      (c.passthrough ? pt : term) = c.router;
    }
    if (pt != nullptr && term != nullptr) {
      const auto& later = pt->rule_loc.line >= term->rule_loc.line ? *pt : *term;
      out.push_back({severity::warning, "sni_passthrough_conflict", later.rule_loc, key.first,
                     qualified(later.name, later.provider), "",
                     "SNI " + key.second + " on entrypoint " + key.first +
                         " is claimed by passthrough router " + qualified(pt->name, pt->provider) +
                         " (" + pt->loc.str() + ") and TLS-terminating router " +
                         qualified(term->name, term->provider) + " (" + term->loc.str() +
                         "); only the higher-priority one ever matches",
                     "keep one router per SNI per entrypoint, or move one to another entrypoint"});
    }
  }

  // Family 3: service servers.
  for (const auto& s : cfg.tcp_services) {
    const auto sq = qualified(s.name, s.provider);
    if (s.servers.empty() && !s.is_weighted) {
      out.push_back({severity::error, "service_no_servers", s.loc, "", "", sq,
                     "TCP service " + sq + " has no servers",
                     "add loadBalancer.servers: [{address: \"host:port\"}]"});
    }
    for (const auto& srv : s.servers) {
      if (srv.url_key) {
        out.push_back({severity::error, "service_url_key", srv.loc, "", "", sq,
                       "TCP service " + sq + " server is written as url: '" + srv.address +
                           "'; TCP servers take address: (url is the HTTP form), so Traefik has "
                           "no address to dial",
                       "write address: \"host:port\" instead of url:"});
        continue;
      }
      if (srv.port_only) {
        unsigned v = 0;
        const auto [p, ec] =
            std::from_chars(srv.address.data(), srv.address.data() + srv.address.size(), v);
        if (ec != std::errc{} || p != srv.address.data() + srv.address.size() || v == 0 ||
            v > 65535) {
          out.push_back({severity::error, "service_address_malformed", srv.loc, "", "", sq,
                         "TCP service " + sq + " loadbalancer.server.port '" + srv.address +
                             "' is not a port number",
                         "set traefik.tcp.services." + s.name + ".loadbalancer.server.port=PORT"});
        }
        continue;
      }
      std::string why;
      auto hp = parse_host_port(srv.address, why);
      if (!hp) {
        const bool no_port = why.rfind("no port", 0) == 0;
        out.push_back(
            {severity::error, no_port ? "service_address_no_port" : "service_address_malformed",
             srv.loc, "", "", sq, "TCP service " + sq + " server address: " + why,
             no_port ? "add the backend's port, e.g. address: \"" + srv.address + ":5432\""
                     : "write address: \"host:port\" (IPv6: \"[addr]:port\")"});
      } else if (hp->host.empty()) {
        out.push_back({severity::error, "service_address_malformed", srv.loc, "", "", sq,
                       "TCP service " + sq + " server address '" + srv.address +
                           "' has no host; Traefik would dial its own machine's port",
                       "write the backend's host: address: \"backend:" + hp->port_text + "\""});
      }
    }
    for (const auto& [wname, wloc] : s.weighted) {
      bool foreign = false;
      if (find_service(cfg, wname, s.provider, foreign) == nullptr && !foreign) {
        out.push_back(
            {severity::error, "service_not_found", wloc, "", "", sq,
             "weighted TCP service " + sq + " names service " + wname + ", which does not exist",
             "define tcp.services." + wname + " or fix the name"});
      }
    }
  }
  return out;
}

namespace {

std::string hex_to_ip(std::string_view hex) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (hex.size() == 8) {
    in_addr a{};
    a.s_addr = static_cast<std::uint32_t>(std::stoul(std::string(hex), nullptr, 16));
    inet_ntop(AF_INET, &a, buf, sizeof buf);
  } else if (hex.size() == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; ++w) {
      // Each 32-bit word is printed in host order, like the IPv4 form.
      const auto word =
          static_cast<std::uint32_t>(std::stoul(std::string(hex.substr(w * 8, 8)), nullptr, 16));
      std::memcpy(reinterpret_cast<unsigned char*>(&a) + w * 4, &word, 4);
    }
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
    std::string s(buf);
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) {
      return s.substr(7);  // v4-mapped
    }
    return s;
  }
  return buf;
}

}  // namespace

std::vector<std::uint16_t> entrypoint_ports(const traefik_config& cfg) {
  std::vector<std::uint16_t> out;
  for (const auto& e : cfg.entrypoints) {
    std::string why;
    if (auto hp = parse_host_port(e.address, why); hp && !hp->udp) {
      out.push_back(hp->port);
    }
  }
  return out;
}

std::vector<listener> read_listeners(const std::string& proc,
                                     const std::vector<std::uint16_t>& ports) {
  std::vector<listener> out;
  for (const char* f : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in(proc + f);
    std::string line;
    std::getline(in, line);  // header
    for (int n = 0; n < 100000 && std::getline(in, line); ++n) {
      std::istringstream ls(line);
      std::vector<std::string> cols;
      std::string c;
      while (ls >> c && cols.size() < 10) {
        cols.push_back(c);
      }
      if (cols.size() < 10 || cols[3] != "0A") {  // 0A = TCP_LISTEN
        continue;
      }
      const auto colon = cols[1].find(':');
      if (colon == std::string::npos) {
        continue;
      }
      try {
        listener l;
        l.ip = hex_to_ip(std::string_view(cols[1]).substr(0, colon));
        l.port = static_cast<std::uint16_t>(std::stoul(cols[1].substr(colon + 1), nullptr, 16));
        l.inode = std::stoull(cols[9]);
        if (ports.empty() || std::find(ports.begin(), ports.end(), l.port) != ports.end()) {
          out.push_back(std::move(l));
        }
      } catch (const std::exception&) {
        continue;  // a line we do not understand is not a listener we can name
      }
    }
  }
  if (out.empty()) {
    return out;
  }
  std::map<std::uint64_t, listener*> by_inode;
  for (auto& l : out) {
    by_inode[l.inode] = &l;
  }
  std::error_code ec;
  for (auto pit = fs::directory_iterator(proc, ec); !ec && pit != fs::directory_iterator();
       pit.increment(ec)) {
    const auto pid_name = pit->path().filename().string();
    if (pid_name.empty() || !std::all_of(pid_name.begin(), pid_name.end(), ::isdigit)) {
      continue;
    }
    std::error_code fec;
    for (auto fit = fs::directory_iterator(pit->path() / "fd", fec);
         !fec && fit != fs::directory_iterator(); fit.increment(fec)) {
      std::error_code lec;
      const auto target = fs::read_symlink(fit->path(), lec).string();
      if (lec || target.rfind("socket:[", 0) != 0) {
        continue;
      }
      std::uint64_t inode = 0;
      const auto* b = target.data() + 8;
      std::from_chars(b, target.data() + target.size(), inode);
      auto it = by_inode.find(inode);
      if (it == by_inode.end() || it->second->pid != 0) {
        continue;
      }
      it->second->pid = std::stoi(pid_name);
      std::ifstream comm(pit->path() / "comm");
      std::getline(comm, it->second->comm);
    }
  }
  return out;
}

std::vector<finding> check_listeners(const traefik_config& cfg,
                                     const std::vector<listener>& listeners) {
  std::vector<finding> out;
  for (const auto& e : cfg.entrypoints) {
    std::string why;
    auto hp = parse_host_port(e.address, why);
    if (!hp || hp->udp) {
      continue;
    }
    std::set<std::string> holders;
    bool traefik = false;
    for (const auto& l : listeners) {
      if (l.port != hp->port || !hosts_overlap(hp->host, l.ip)) {
        continue;
      }
      if (l.comm == "traefik") {
        traefik = true;
        continue;
      }
      holders.insert(l.pid != 0 ? l.comm + " (pid " + std::to_string(l.pid) + ", listening on " +
                                      l.ip + ":" + std::to_string(l.port) + ")"
                                : "a process linesman cannot see (listening on " + l.ip + ":" +
                                      std::to_string(l.port) + "; run as root to name it)");
    }
    if (holders.empty()) {
      continue;
    }
    std::string who;
    for (const auto& h : holders) {
      who += (who.empty() ? "" : ", ") + h;
    }
    out.push_back({severity::error, "port_in_use", e.address_loc, e.name, "", "",
                   "entrypoint " + e.name + " (" + e.address + ") wants port " + hp->port_text +
                       ", which is already held by " + who +
                       (traefik ? " (traefik also listens there)" : "") +
                       "; Traefik cannot bind it and the entrypoint stays down",
                   "stop that program or move the entrypoint to a free port (ss -tlnp 'sport = :" +
                       hp->port_text + "')"});
  }
  return out;
}

}  // namespace linesman::tools::doctor
