// doctor/checks: the findings of `linesman doctor` and the checks that read only the configuration
// and this machine (entrypoints, rules, services, TLS, port conflicts). Probes and the API checks
// live in tools/doctor/probe.hpp and api.hpp and produce the same `finding` values.
#pragma once

#include "proxy/address.hpp"
#include "proxy/port_owner.hpp"
#include "tools/doctor/config.hpp"
#include "tools/doctor/rule.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::tools::doctor {

enum class severity { error, warning, info };
std::string_view severity_name(severity s);

// finding: one problem, where it is written, what it affects and how to fix it.
struct finding {
  severity level = severity::error;
  std::string code;  // stable identifier, e.g. "entrypoint_missing"
  source_loc loc;
  std::string entrypoint;  // "" when not tied to one
  std::string router;      // "name@provider" or ""
  std::string service;     // "name@provider" or ""
  std::string message;
  std::string fix;
};

// host_port: an address split as Traefik splits it ("host:port", "[v6]:port", ":port", with an
// optional "/tcp" or "/udp"), by the proxy's one parser (proxy/address.hpp).
using host_port = proxy::address_parts;
// parse_host_port: nullopt with `why` set (worded for a Traefik user) when the address is
// unusable.
std::optional<host_port> parse_host_port(std::string_view address, std::string& why);

// router_entrypoints: the entrypoints a TCP/HTTP router is attached to (its own list, or the
// default ones: those with asDefault, else all TCP entrypoints).
std::vector<std::string> router_entrypoints(const traefik_config& cfg, bool has_list,
                                            const std::vector<std::string>& list);

// find_service: the TCP service a router's `service` names (resolving name@provider); nullptr
// when absent; `foreign` is set when it names another provider we did not read.
const tcp_service* find_service(const traefik_config& cfg, const std::string& ref,
                                const std::string& router_provider, bool& foreign);

// effective_syntax: the rule syntax for a router (its ruleSyntax, the static default, or
// `fallback`).
rule_syntax effective_syntax(const traefik_config& cfg, const tcp_router& r, rule_syntax fallback);

std::string qualified(const std::string& name, const std::string& provider);

// check_config: families 1-5 except the machine's sockets (see check_listeners), and the
// Kubernetes-only checks (check_kubernetes in tools/doctor/kubernetes.hpp).
std::vector<finding> check_config(const traefik_config& cfg, rule_syntax fallback);

// listener: a LISTEN socket of this machine, read by the proxy's one /proc scanner
// (proxy/port_owner.hpp: proxy::read_listening_sockets; pass entrypoint_ports() to skip the walk
// over every process's fds when nothing listens where the entrypoints want to).
using listener = proxy::listening_socket;
// entrypoint_ports: the TCP ports the entrypoints want.
std::vector<std::uint16_t> entrypoint_ports(const traefik_config& cfg);

// check_listeners: entrypoints whose port another program (not traefik) already holds.
std::vector<finding> check_listeners(const traefik_config& cfg,
                                     const std::vector<listener>& listeners);

}  // namespace linesman::tools::doctor
