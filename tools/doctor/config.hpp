// doctor/config: Traefik's static and dynamic configuration, read from YAML (yaml-cpp), TOML
// (toml++) and `docker inspect` labels into one model where every value remembers its file:line.
// Only what `linesman doctor` checks is kept (entrypoints, TCP routers/services, HTTP routers);
// unknown keys and unrelated sections are ignored, as Traefik users' real files have many.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace linesman::tools::doctor {

// source_loc: where a value was written. line/col are 1-based; 0 means unknown.
struct source_loc {
  std::string file;
  int line = 0;
  int col = 0;
  // str: "file:line" (or "file", or "" when nothing is known).
  [[nodiscard]] std::string str() const;
};

// cfg_node: a YAML or TOML document as one tree (maps keep their order and key locations).
// Scalars are kept as text: TOML integers and booleans are written back in their TOML form.
struct cfg_node {
  enum class kind { null, scalar, map, seq };
  kind type = kind::null;
  std::string text;                                   // scalar
  std::vector<std::pair<std::string, cfg_node>> map;  // key -> value
  std::vector<source_loc> key_locs;                   // parallel to `map`
  std::vector<cfg_node> seq;
  source_loc loc;
  bool quoted = false;  // a quoted scalar: its text starts one column after `loc`

  // get: the value of `key` in a map, matched case-insensitively as Traefik does for option names;
  // nullptr when absent or when this node is not a map.
  [[nodiscard]] const cfg_node* get(std::string_view key) const;
  // key_loc: the location of `key` itself (the line a user reads as "where this is defined").
  [[nodiscard]] source_loc key_loc(std::string_view key) const;
};

// load_tree: parse one YAML (.yml/.yaml) or TOML (.toml) file. Throws std::runtime_error naming
// the file (and line:column for syntax errors) when it cannot be read or parsed.
cfg_node load_tree(const std::string& path);
cfg_node parse_yaml_text(const std::string& text, const std::string& file_name);
// parse_yaml_documents: every document of a YAML stream (`---` separated); empty documents are
// left out. Throws like parse_yaml_text.
std::vector<cfg_node> parse_yaml_documents(const std::string& text, const std::string& file_name);
// read_input_file: the whole file; throws naming it when it cannot be read, is a directory or is
// larger than `max_bytes`.
std::string read_input_file(const std::string& path, std::size_t max_bytes);
cfg_node parse_toml_text(const std::string& text, const std::string& file_name);

struct entrypoint {
  std::string name;
  std::string address;  // as written, e.g. ":8443", "0.0.0.0:5432/udp"
  source_loc loc;       // the entrypoint's key
  source_loc address_loc;
  bool as_default = false;
};

struct router_tls {
  bool present = false;
  bool passthrough = false;
  std::string cert_resolver;
  std::string options;
  bool has_domains = false;
  source_loc loc;
  source_loc passthrough_loc;
  source_loc extra_loc;  // the first of certResolver/options/domains
};

struct tcp_router {
  std::string name;
  std::string provider = "file";
  source_loc loc;
  std::vector<std::string> entry_points;
  bool has_entry_points = false;
  source_loc entry_points_loc;
  std::string rule;
  source_loc rule_loc;
  int rule_col = 0;         // file column of the rule's first character; 0 when unknown
  std::string rule_syntax;  // "" (the default), "v2", "v3"
  std::string service;
  source_loc service_loc;
  router_tls tls;
};

struct server_address {
  std::string address;
  source_loc loc;
  bool url_key = false;    // written as `url:` (the HTTP form) instead of `address:`
  bool port_only = false;  // docker label `loadbalancer.server.port`: host comes from the container
};

struct tcp_service {
  std::string name;
  std::string provider = "file";
  source_loc loc;
  std::vector<server_address> servers;
  std::vector<std::pair<std::string, source_loc>> weighted;  // service names
  bool is_weighted = false;
  std::string servers_transport;
};

struct http_router {
  std::string name;
  std::string provider = "file";
  source_loc loc;
  std::vector<std::string> entry_points;
  bool has_entry_points = false;
  std::string rule;
  bool tls = false;
};

// k8s_reference: a reference from an IngressRouteTCP to another object by namespace/name
// (routes[].services[], routes[].middlewares[], routes[].services[].serversTransport,
// tls.options). `ns` is already resolved (empty in the reference = the IngressRouteTCP's
// namespace); `provider_ref` is set for a `name@provider` reference, which is not checked.
struct k8s_reference {
  enum class kind { service, middleware, servers_transport, tls_option };
  kind what = kind::service;
  std::size_t router = 0;  // index in traefik_config::tcp_routers
  std::string parent_ns;   // the IngressRouteTCP's namespace
  std::string ns;
  std::string name;
  bool provider_ref = false;
  source_loc loc;
  // Services only: the port as written (a number or a port name); has_port is false when the
  // key is absent, empty or 0.
  std::string port;
  bool has_port = false;
  bool port_named = false;
  source_loc port_loc;
};

// k8s_service: a core/v1 Service: the port names and numbers a reference can use.
struct k8s_service {
  std::string ns;
  std::string name;
  source_loc loc;
  bool external_name = false;
  std::vector<std::pair<std::string, std::string>> ports;  // name ("" when unnamed), port
};

// kubernetes_objects: what `--kubernetes FILE` read besides the routers (which join
// traefik_config::tcp_routers with the provider "kubernetescrd" and the name "namespace/name").
struct kubernetes_objects {
  std::vector<k8s_reference> references;
  std::vector<k8s_service> services;
  std::vector<std::string> middlewares;         // "namespace/name" of each MiddlewareTCP
  std::vector<std::string> tls_options;         // of each TLSOption
  std::vector<std::string> servers_transports;  // of each ServersTransportTCP
  bool have_services = false;                   // at least one Service was in the input
  // Traefik kinds whose apiVersion is neither traefik.io/v1alpha1 nor
  // traefik.containo.us/v1alpha1: kind, apiVersion, where.
  std::vector<std::pair<std::string, source_loc>> unknown_api_versions;
};

// traefik_config: everything read, with the files it came from.
struct traefik_config {
  std::vector<std::string> static_files;
  std::vector<std::string> dynamic_files;
  std::vector<std::string> docker_files;
  std::vector<std::string> kubernetes_files;
  bool have_static = false;
  bool k8s_allow_cross_namespace = false;  // static providers.kubernetesCRD.allowCrossNamespace
  std::string default_rule_syntax;         // static core.defaultRuleSyntax (v3)
  std::vector<entrypoint> entrypoints;
  std::vector<tcp_router> tcp_routers;
  std::vector<tcp_service> tcp_services;
  std::vector<http_router> http_routers;
  std::vector<std::pair<std::string, bool>> tcp_transports;  // name -> has tls
  kubernetes_objects kubernetes;
};

// read_static: entryPoints, core.defaultRuleSyntax; provider file paths are appended to
// `provider_paths`, resolved against the static file's directory when relative.
void read_static(const cfg_node& root, const std::string& file, traefik_config& out,
                 std::vector<std::string>& provider_paths);
// read_dynamic: the tcp and http sections of one dynamic file.
void read_dynamic(const cfg_node& root, traefik_config& out);
// read_docker_inspect: `docker inspect` JSON (an array of containers); `traefik.tcp.*` and
// `traefik.http.routers.*` labels. Lines point at the label in the file. Throws naming the file.
void read_docker_inspect(const std::string& path, traefik_config& out);

struct load_options {
  std::string static_file;                 // "" = look in Traefik's usual places
  std::vector<std::string> dynamic_paths;  // files or directories; "" = from the file provider
  std::vector<std::string> docker_inspect_files;
  std::vector<std::string> kubernetes_files;  // kubectl get ... -o yaml (tools/doctor/kubernetes)
};

// load_config: read everything `opts` names. Throws std::runtime_error naming the file when an
// input is missing or does not parse, and when nothing at all could be found.
traefik_config load_config(const load_options& opts);

// split_list: "a, b" -> {"a","b"} (docker label lists).
std::vector<std::string> split_list(std::string_view s);

}  // namespace linesman::tools::doctor
