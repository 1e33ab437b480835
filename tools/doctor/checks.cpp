#include "tools/doctor/checks.hpp"

#include "tools/doctor/kubernetes.hpp"
#include "tools/text.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <map>
#include <set>

namespace linesman::tools::doctor {

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
  const proxy::address_error e =
      proxy::parse_address(address, {.empty_host = true, .protocol_suffix = true}, out);
  const std::string a(address);
  switch (e) {
    case proxy::address_error::none:
      return out;
    case proxy::address_error::empty:
      why = "the address is empty";
      break;
    case proxy::address_error::url:
      why = "'" + a + "' is a URL; a TCP address is host:port without a scheme";
      break;
    case proxy::address_error::unknown_protocol:
      why = "unknown protocol suffix '/" + out.protocol + "' (use /tcp or /udp)";
      break;
    case proxy::address_error::missing_bracket:
      why = "missing ']' in an IPv6 address";
      break;
    case proxy::address_error::after_bracket:
      why = "unexpected text after ']'";
      break;
    case proxy::address_error::not_ipv6:
      why = "'" + out.host + "' in brackets is not an IPv6 address";
      break;
    case proxy::address_error::no_port:
      why = "no port: '" + a + "' needs ':PORT'";
      break;
    case proxy::address_error::ipv6_without_brackets:
      why = "an IPv6 address must be written in brackets: [addr]:port";
      break;
    case proxy::address_error::empty_host:  // not returned here: ":PORT" is all addresses
      why = "no host before ':PORT' in '" + a + "'";
      break;
    case proxy::address_error::bad_host:
      why = "host '" + out.host + "' contains a space, a control character, '/' or '@'";
      break;
    case proxy::address_error::empty_port:
      why = "no port after ':' in '" + a + "'";
      break;
    case proxy::address_error::port_not_number:
      why = "port '" + out.port_text + "' is not a number (named ports are not resolved)";
      break;
    case proxy::address_error::port_out_of_range:
      why = "port " + out.port_text + " is outside 1-65535";
      break;
  }
  return std::nullopt;
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
    std::vector<std::string> used;
    for (const auto& r : cfg.tcp_routers) {
      for (const auto& e : r.entry_points) {
        if (std::find(used.begin(), used.end(), e) == used.end()) {
          used.push_back(e);
        }
      }
    }
    std::string names;
    for (const auto& e : used) {
      names += (names.empty() ? "" : ", ") + e;
    }
    out.push_back({severity::info,
                   "static_missing",
                   {},
                   "",
                   "",
                   "",
                   "no static configuration was read, so entrypoint names and ports were not "
                   "checked" +
                       (names.empty() ? std::string{} : " (the routers use: " + names + ")"),
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
            if (iequals(e.name, name)) {
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
          const std::string a = lower(other.name);
          const std::string b = lower(r.service.substr(0, r.service.find('@')));
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
  auto k8s = check_kubernetes(cfg);
  out.insert(out.end(), k8s.begin(), k8s.end());
  return out;
}

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
