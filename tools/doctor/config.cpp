#include "tools/doctor/config.hpp"

#include "tls/hex.hpp"
#include "tools/doctor/kubernetes.hpp"
#include "tools/text.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>
#include <toml++/toml.h>
#include <yaml-cpp/yaml.h>

namespace linesman::tools::doctor {

namespace fs = std::filesystem;

std::string source_loc::str() const {
  if (file.empty()) {
    return {};
  }
  if (line <= 0) {
    return file;
  }
  return file + ":" + std::to_string(line);
}

namespace {

// kMaxInputBytes: the largest configuration file read (a real one is kilobytes; kubectl output for
// a large cluster a few megabytes).
constexpr std::size_t kMaxInputBytes = 64u << 20;
// kMaxYamlNodes: the most nodes one file may expand to (aliases are copied, so a small file with
// nested aliases could otherwise grow without bound).
constexpr std::size_t kMaxYamlNodes = 2'000'000;

std::string read_file_text(const std::string& path) {
  return read_input_file(path, kMaxInputBytes);
}

cfg_node from_yaml(const YAML::Node& n, const std::string& file, std::size_t& budget) {
  if (budget == 0) {
    throw std::runtime_error(file + ": more than " + std::to_string(kMaxYamlNodes) +
                             " YAML nodes (aliases expanded); not a configuration linesman reads");
  }
  --budget;
  cfg_node out;
  const auto mark = n.Mark();
  out.loc =
      mark.is_null() ? source_loc{file, 0, 0} : source_loc{file, mark.line + 1, mark.column + 1};
  switch (n.Type()) {
    case YAML::NodeType::Scalar:
      out.type = cfg_node::kind::scalar;
      out.text = n.Scalar();
      out.quoted = n.Tag() == "!";  // yaml-cpp tags quoted scalars "!" and plain ones "?"
      break;
    case YAML::NodeType::Sequence:
      out.type = cfg_node::kind::seq;
      for (const auto& item : n) {
        out.seq.push_back(from_yaml(item, file, budget));
      }
      break;
    case YAML::NodeType::Map:
      out.type = cfg_node::kind::map;
      for (auto it = n.begin(); it != n.end(); ++it) {
        if (!it->first.IsScalar()) {
          continue;  // complex keys mean nothing to Traefik
        }
        const auto km = it->first.Mark();
        out.key_locs.push_back(km.is_null() ? source_loc{file, 0, 0}
                                            : source_loc{file, km.line + 1, km.column + 1});
        out.map.emplace_back(it->first.Scalar(), from_yaml(it->second, file, budget));
      }
      break;
    default:
      break;
  }
  return out;
}

source_loc toml_loc(const toml::source_region& r, const std::string& file) {
  return {file, static_cast<int>(r.begin.line), static_cast<int>(r.begin.column)};
}

cfg_node from_toml(const toml::node& n, const std::string& file) {
  cfg_node out;
  out.loc = toml_loc(n.source(), file);
  if (const auto* t = n.as_table()) {
    out.type = cfg_node::kind::map;
    for (auto&& [k, v] : *t) {
      out.key_locs.push_back(toml_loc(k.source(), file));
      out.map.emplace_back(std::string(k.str()), from_toml(v, file));
    }
  } else if (const auto* a = n.as_array()) {
    out.type = cfg_node::kind::seq;
    for (const auto& item : *a) {
      out.seq.push_back(from_toml(item, file));
    }
  } else {
    out.type = cfg_node::kind::scalar;
    if (auto s = n.value_exact<std::string>()) {
      out.text = *s;
      out.quoted = true;
    } else if (auto b = n.value_exact<bool>()) {
      out.text = *b ? "true" : "false";
    } else if (auto i = n.value_exact<std::int64_t>()) {
      out.text = std::to_string(*i);
    } else if (auto d = n.value_exact<double>()) {
      std::ostringstream ss;
      ss << *d;
      out.text = ss.str();
    }  // dates and times mean nothing to the checks: kept as an empty scalar
  }
  return out;
}

const cfg_node* path_get(const cfg_node& root, std::initializer_list<std::string_view> keys) {
  const cfg_node* cur = &root;
  for (auto k : keys) {
    cur = cur->get(k);
    if (cur == nullptr) {
      return nullptr;
    }
  }
  return cur;
}

std::string scalar_of(const cfg_node* n) {
  return (n != nullptr && n->type == cfg_node::kind::scalar) ? n->text : std::string{};
}

bool truthy(const cfg_node* n) { return n != nullptr && iequals(scalar_of(n), "true"); }

// string_list: a YAML/TOML list of strings, or one string (Traefik would reject that, but the
// user's intent is clear and other checks still help).
std::vector<std::string> string_list(const cfg_node* n) {
  std::vector<std::string> out;
  if (n == nullptr) {
    return out;
  }
  if (n->type == cfg_node::kind::seq) {
    for (const auto& item : n->seq) {
      if (item.type == cfg_node::kind::scalar) {
        out.push_back(item.text);
      }
    }
  } else if (n->type == cfg_node::kind::scalar) {
    out = split_list(n->text);
  }
  return out;
}

void read_router_tls(const cfg_node& r, router_tls& tls) {
  const auto* t = r.get("tls");
  if (t == nullptr) {
    return;
  }
  if (t->type == cfg_node::kind::scalar && iequals(t->text, "false")) {
    return;
  }
  tls.present = true;
  tls.loc = r.key_loc("tls");
  if (t->type != cfg_node::kind::map) {
    return;
  }
  if (const auto* p = t->get("passthrough"); truthy(p)) {
    tls.passthrough = true;
    tls.passthrough_loc = t->key_loc("passthrough");
  }
  for (const auto* key : {"certResolver", "options", "domains"}) {
    const auto* v = t->get(key);
    if (v == nullptr || (v->type == cfg_node::kind::scalar && v->text.empty())) {
      continue;
    }
    if (tls.extra_loc.line == 0) {
      tls.extra_loc = t->key_loc(key);
    }
    if (std::string_view(key) == "certResolver") {
      tls.cert_resolver = scalar_of(v);
    } else if (std::string_view(key) == "options") {
      tls.options = scalar_of(v);
    } else {
      tls.has_domains = true;
    }
  }
}

void add_file_once(std::vector<std::string>& files, const std::string& f) {
  if (std::find(files.begin(), files.end(), f) == files.end()) {
    files.push_back(f);
  }
}

bool config_ext(const fs::path& p) {
  const auto e = lower(p.extension().string());
  return e == ".yml" || e == ".yaml" || e == ".toml";
}

}  // namespace

const cfg_node* cfg_node::get(std::string_view key) const {
  if (type != kind::map) {
    return nullptr;
  }
  for (const auto& [k, v] : map) {
    if (iequals(k, key)) {
      return &v;
    }
  }
  return nullptr;
}

source_loc cfg_node::key_loc(std::string_view key) const {
  for (std::size_t i = 0; i < map.size(); ++i) {
    if (iequals(map[i].first, key)) {
      return key_locs[i];
    }
  }
  return loc;
}

std::string read_input_file(const std::string& path, std::size_t max_bytes) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    throw std::runtime_error(path + ": is a directory, expected a file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error(path + ": cannot read: " + std::strerror(errno));
  }
  if (const auto size = fs::file_size(path, ec); !ec && size > max_bytes) {
    throw std::runtime_error(path + ": " + std::to_string(size) + " bytes, more than the " +
                             std::to_string(max_bytes) + " linesman reads");
  }
  std::string out;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    out.append(buf, static_cast<std::size_t>(in.gcount()));
    if (out.size() > max_bytes) {  // not a regular file (a pipe), or it grew while we read
      throw std::runtime_error(path + ": more than the " + std::to_string(max_bytes) +
                               " bytes linesman reads");
    }
  }
  return out;
}

namespace {

// yaml_error: file:line:column and yaml-cpp's message, whose bytes outside printable ASCII (it
// quotes the offending input) are escaped so the message stays one readable line.
std::runtime_error yaml_error(const YAML::Exception& e, const std::string& file_name) {
  std::string msg;
  for (const char c : e.msg) {
    const auto b = static_cast<std::uint8_t>(c);
    if (b < 0x20 || b > 0x7e) {
      tls::append_hex_escape(msg, b);
    } else {
      msg.push_back(c);
    }
  }
  return std::runtime_error(file_name + ":" + std::to_string(e.mark.line + 1) + ":" +
                            std::to_string(e.mark.column + 1) + ": YAML syntax error: " + msg);
}

}  // namespace

cfg_node parse_yaml_text(const std::string& text, const std::string& file_name) {
  try {
    std::size_t budget = kMaxYamlNodes;
    return from_yaml(YAML::Load(text), file_name, budget);
  } catch (const YAML::Exception& e) {
    throw yaml_error(e, file_name);
  }
}

std::vector<cfg_node> parse_yaml_documents(const std::string& text, const std::string& file_name) {
  try {
    std::vector<cfg_node> out;
    std::size_t budget = kMaxYamlNodes;
    for (const auto& doc : YAML::LoadAll(text)) {
      if (doc.IsNull()) {
        continue;
      }
      out.push_back(from_yaml(doc, file_name, budget));
    }
    return out;
  } catch (const YAML::Exception& e) {
    throw yaml_error(e, file_name);
  }
}

cfg_node parse_toml_text(const std::string& text, const std::string& file_name) {
  try {
    auto tbl = toml::parse(text, file_name);
    return from_toml(tbl, file_name);
  } catch (const toml::parse_error& e) {
    throw std::runtime_error(file_name + ":" + std::to_string(e.source().begin.line) + ":" +
                             std::to_string(e.source().begin.column) +
                             ": TOML syntax error: " + std::string(e.description()));
  }
}

cfg_node load_tree(const std::string& path) {
  const auto text = read_file_text(path);
  if (lower(fs::path(path).extension().string()) == ".toml") {
    return parse_toml_text(text, path);
  }
  return parse_yaml_text(text, path);
}

std::vector<std::string> split_list(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  auto flush = [&] {
    auto b = cur.find_first_not_of(" \t");
    auto e = cur.find_last_not_of(" \t");
    if (b != std::string::npos) {
      out.push_back(cur.substr(b, e - b + 1));
    }
    cur.clear();
  };
  for (char c : s) {
    if (c == ',') {
      flush();
    } else {
      cur.push_back(c);
    }
  }
  flush();
  return out;
}

void read_static(const cfg_node& root, const std::string& file, traefik_config& out,
                 std::vector<std::string>& provider_paths) {
  out.have_static = true;
  add_file_once(out.static_files, file);
  if (const auto* eps = root.get("entryPoints");
      eps != nullptr && eps->type == cfg_node::kind::map) {
    for (std::size_t i = 0; i < eps->map.size(); ++i) {
      const auto& [name, ep] = eps->map[i];
      entrypoint e;
      e.name = name;
      e.loc = eps->key_locs[i];
      e.address_loc = e.loc;
      if (const auto* a = ep.get("address")) {
        e.address = scalar_of(a);
        e.address_loc = ep.key_loc("address");
      }
      e.as_default = truthy(ep.get("asDefault"));
      out.entrypoints.push_back(std::move(e));
    }
  }
  out.default_rule_syntax = scalar_of(path_get(root, {"core", "defaultRuleSyntax"}));
  out.k8s_allow_cross_namespace =
      truthy(path_get(root, {"providers", "kubernetesCRD", "allowCrossNamespace"}));
  const auto base = fs::path(file).parent_path();
  for (const auto* key : {"filename", "directory"}) {
    const auto p = scalar_of(path_get(root, {"providers", "file", key}));
    if (p.empty()) {
      continue;
    }
    // Traefik resolves relative paths against its working directory; a file next to the static
    // file is the common layout, so prefer that when it exists.
    fs::path resolved(p);
    std::error_code ec;
    if (resolved.is_relative() && fs::exists(base / resolved, ec)) {
      resolved = base / resolved;
    }
    provider_paths.push_back(resolved.string());
  }
}

void read_dynamic(const cfg_node& root, traefik_config& out) {
  if (const auto* routers = path_get(root, {"tcp", "routers"});
      routers != nullptr && routers->type == cfg_node::kind::map) {
    for (std::size_t i = 0; i < routers->map.size(); ++i) {
      const auto& [name, r] = routers->map[i];
      tcp_router tr;
      tr.name = name;
      tr.loc = routers->key_locs[i];
      if (const auto* eps = r.get("entryPoints")) {
        tr.has_entry_points = true;
        tr.entry_points = string_list(eps);
        tr.entry_points_loc = r.key_loc("entryPoints");
      }
      if (const auto* rule = r.get("rule")) {
        tr.rule = scalar_of(rule);
        tr.rule_loc = r.key_loc("rule");
        if (rule->loc.line == tr.rule_loc.line && rule->loc.col > 0) {
          tr.rule_col = rule->loc.col + (rule->quoted ? 1 : 0);
        }
      }
      tr.rule_syntax = scalar_of(r.get("ruleSyntax"));
      if (const auto* svc = r.get("service")) {
        tr.service = scalar_of(svc);
        tr.service_loc = r.key_loc("service");
      }
      read_router_tls(r, tr.tls);
      out.tcp_routers.push_back(std::move(tr));
    }
  }
  if (const auto* services = path_get(root, {"tcp", "services"});
      services != nullptr && services->type == cfg_node::kind::map) {
    for (std::size_t i = 0; i < services->map.size(); ++i) {
      const auto& [name, s] = services->map[i];
      tcp_service ts;
      ts.name = name;
      ts.loc = services->key_locs[i];
      if (const auto* lb = s.get("loadBalancer")) {
        ts.servers_transport = scalar_of(lb->get("serversTransport"));
        if (const auto* servers = lb->get("servers");
            servers != nullptr && servers->type == cfg_node::kind::seq) {
          for (const auto& srv : servers->seq) {
            server_address sa;
            sa.loc = srv.loc;
            if (const auto* a = srv.get("address")) {
              sa.address = scalar_of(a);
              sa.loc = srv.key_loc("address");
            } else if (const auto* u = srv.get("url")) {
              sa.address = scalar_of(u);
              sa.loc = srv.key_loc("url");
              sa.url_key = true;
            }
            ts.servers.push_back(std::move(sa));
          }
        }
      }
      if (const auto* w = s.get("weighted")) {
        ts.is_weighted = true;
        if (const auto* ws = w->get("services"); ws != nullptr && ws->type == cfg_node::kind::seq) {
          for (const auto& item : ws->seq) {
            ts.weighted.emplace_back(scalar_of(item.get("name")), item.key_loc("name"));
          }
        }
      }
      out.tcp_services.push_back(std::move(ts));
    }
  }
  if (const auto* tr = path_get(root, {"tcp", "serversTransports"});
      tr != nullptr && tr->type == cfg_node::kind::map) {
    for (const auto& [name, t] : tr->map) {
      out.tcp_transports.emplace_back(name, t.get("tls") != nullptr);
    }
  }
  if (const auto* routers = path_get(root, {"http", "routers"});
      routers != nullptr && routers->type == cfg_node::kind::map) {
    for (std::size_t i = 0; i < routers->map.size(); ++i) {
      const auto& [name, r] = routers->map[i];
      http_router hr;
      hr.name = name;
      hr.loc = routers->key_locs[i];
      if (const auto* eps = r.get("entryPoints")) {
        hr.has_entry_points = true;
        hr.entry_points = string_list(eps);
      }
      hr.rule = scalar_of(r.get("rule"));
      hr.tls = r.get("tls") != nullptr;
      out.http_routers.push_back(std::move(hr));
    }
  }
}

namespace {

// label_line: the line of `"key"` in the docker inspect text (labels are unique per container,
// and the search starts at the container's own Name so two containers do not mix).
int label_line(const std::string& text, std::size_t from, const std::string& key) {
  auto pos = text.find("\"" + key + "\"", from);
  if (pos == std::string::npos) {
    pos = text.find("\"" + key + "\"");
  }
  if (pos == std::string::npos) {
    return 0;
  }
  return static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(pos), '\n')) +
         1;
}

// docker_named: the element of `v` named `n` among those from index `first` on (this container's),
// appended with the docker provider when there is none yet. References stay valid only until the
// next append.
template <class T>
T& docker_named(std::vector<T>& v, std::size_t first, const std::string& n) {
  for (auto i = first; i < v.size(); ++i) {
    if (v[i].name == n) {
      return v[i];
    }
  }
  T t;
  t.name = n;
  t.provider = "docker";
  v.push_back(std::move(t));
  return v.back();
}

}  // namespace

void read_docker_inspect(const std::string& path, traefik_config& out) {
  const auto text = read_file_text(path);
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not docker inspect JSON: " + e.what());
  }
  if (doc.is_object()) {
    doc = nlohmann::json::array({doc});
  }
  if (!doc.is_array()) {
    throw std::runtime_error(path + ": expected the JSON array `docker inspect` prints");
  }
  add_file_once(out.docker_files, path);
  for (const auto& c : doc) {
    if (!c.is_object()) {
      continue;
    }
    const std::string cname = c.value("Name", std::string{});
    const auto name_pos = cname.empty() ? 0 : text.find("\"" + cname + "\"");
    const auto from = name_pos == std::string::npos ? 0 : name_pos;
    const auto cfg = c.find("Config");
    if (cfg == c.end() || !cfg->is_object()) {
      continue;
    }
    const auto labels = cfg->find("Labels");
    if (labels == cfg->end() || !labels->is_object()) {
      continue;
    }
    const auto first_tcp_router = out.tcp_routers.size();
    const auto first_tcp_service = out.tcp_services.size();
    std::vector<http_router> http;
    for (const auto& [key, val] : labels->items()) {
      if (!val.is_string()) {
        continue;
      }
      const std::string v = val.get<std::string>();
      const std::string lk = lower(key);
      const source_loc loc{path, label_line(text, from, key), 0};
      auto after = [&](std::string_view prefix, std::string& name, std::string& rest) {
        if (lk.rfind(prefix, 0) != 0) {
          return false;
        }
        const auto tail = key.substr(prefix.size());
        const auto dot = tail.find('.');
        if (dot == std::string::npos) {
          return false;
        }
        name = tail.substr(0, dot);
        rest = lower(tail.substr(dot + 1));
        return true;
      };
      std::string name;
      std::string rest;
      if (after("traefik.tcp.routers.", name, rest)) {
        auto& r = docker_named(out.tcp_routers, first_tcp_router, name);
        if (r.loc.line == 0 || loc.line < r.loc.line) {
          r.loc = loc;
        }
        if (rest == "rule") {
          r.rule = v;
          r.rule_loc = loc;
        } else if (rest == "rulesyntax") {
          r.rule_syntax = v;
        } else if (rest == "entrypoints") {
          r.has_entry_points = true;
          r.entry_points = split_list(v);
          r.entry_points_loc = loc;
        } else if (rest == "service") {
          r.service = v;
          r.service_loc = loc;
        } else if (rest == "tls") {
          if (iequals(v, "true")) {
            r.tls.present = true;
            r.tls.loc = loc;
          }
        } else if (rest.rfind("tls.", 0) == 0) {
          r.tls.present = true;
          if (r.tls.loc.line == 0) {
            r.tls.loc = loc;
          }
          if (rest == "tls.passthrough") {
            r.tls.passthrough = iequals(v, "true");
            r.tls.passthrough_loc = loc;
          } else if (rest == "tls.certresolver" || rest == "tls.options" ||
                     rest.rfind("tls.domains", 0) == 0) {
            if (r.tls.extra_loc.line == 0) {
              r.tls.extra_loc = loc;
            }
            if (rest == "tls.certresolver") {
              r.tls.cert_resolver = v;
            } else if (rest == "tls.options") {
              r.tls.options = v;
            } else {
              r.tls.has_domains = true;
            }
          }
        }
      } else if (after("traefik.tcp.services.", name, rest)) {
        auto& s = docker_named(out.tcp_services, first_tcp_service, name);
        if (s.loc.line == 0 || loc.line < s.loc.line) {
          s.loc = loc;
        }
        if (rest == "loadbalancer.server.port") {
          server_address sa;
          sa.address = v;
          sa.loc = loc;
          sa.port_only = true;
          s.servers.push_back(std::move(sa));
        }
      } else if (after("traefik.http.routers.", name, rest)) {
        auto it = std::find_if(http.begin(), http.end(),
                               [&](const http_router& h) { return h.name == name; });
        if (it == http.end()) {
          http_router h;
          h.name = name;
          h.provider = "docker";
          h.loc = loc;
          http.push_back(std::move(h));
          it = http.end() - 1;
        }
        if (rest == "entrypoints") {
          it->has_entry_points = true;
          it->entry_points = split_list(v);
        } else if (rest == "rule") {
          it->rule = v;
        } else if (rest == "tls" || rest.rfind("tls.", 0) == 0) {
          it->tls = true;
        }
      }
    }
    // Docker links a router without a service label to the container's only TCP service.
    const auto n_services = out.tcp_services.size() - first_tcp_service;
    for (auto i = first_tcp_router; i < out.tcp_routers.size(); ++i) {
      auto& r = out.tcp_routers[i];
      if (r.service.empty() && n_services == 1) {
        r.service = out.tcp_services[first_tcp_service].name;
      }
    }
    for (auto& h : http) {
      out.http_routers.push_back(std::move(h));
    }
  }
}

namespace {

void load_dynamic_path(const std::string& p, traefik_config& out, const std::string& origin) {
  std::error_code ec;
  if (!fs::exists(p, ec)) {
    throw std::runtime_error(p + ": dynamic configuration not found" +
                             (origin.empty() ? "" : " (named by " + origin + ")"));
  }
  if (fs::is_directory(p, ec)) {
    std::vector<std::string> files;
    for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::end(it);
         it.increment(ec)) {
      if (it->is_regular_file(ec) && config_ext(it->path())) {
        files.push_back(it->path().string());
      }
    }
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      add_file_once(out.dynamic_files, f);
      read_dynamic(load_tree(f), out);
    }
    return;
  }
  add_file_once(out.dynamic_files, p);
  read_dynamic(load_tree(p), out);
}

}  // namespace

traefik_config load_config(const load_options& opts) {
  traefik_config out;
  std::vector<std::string> provider_paths;
  std::string static_file = opts.static_file;
  std::vector<std::string> looked;
  if (static_file.empty()) {
    std::vector<fs::path> dirs{"/etc/traefik"};
    if (const char* x = std::getenv("XDG_CONFIG_HOME"); x != nullptr && *x != '\0') {
      dirs.emplace_back(x);
    }
    if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
      dirs.push_back(fs::path(h) / ".config");
    }
    dirs.emplace_back(".");
    for (const auto& d : dirs) {
      for (const auto* n : {"traefik.yml", "traefik.yaml", "traefik.toml"}) {
        const auto p = (d / n).string();
        looked.push_back(p);
        std::error_code ec;
        if (static_file.empty() && fs::is_regular_file(p, ec)) {
          static_file = p;
        }
      }
    }
  }
  if (!static_file.empty()) {
    read_static(load_tree(static_file), static_file, out, provider_paths);
  }
  if (!opts.dynamic_paths.empty()) {
    for (const auto& p : opts.dynamic_paths) {
      load_dynamic_path(p, out, "");
    }
  } else {
    for (const auto& p : provider_paths) {
      load_dynamic_path(p, out, static_file + " providers.file");
    }
  }
  for (const auto& d : opts.docker_inspect_files) {
    read_docker_inspect(d, out);
  }
  for (const auto& k : opts.kubernetes_files) {
    read_kubernetes(k, out);
  }
  if (!out.have_static && out.dynamic_files.empty() && out.docker_files.empty() &&
      out.kubernetes_files.empty()) {
    std::string msg = "no Traefik configuration found: pass --static FILE and/or --dynamic PATH";
    if (!looked.empty()) {
      msg += " (looked for";
      for (const auto& l : looked) {
        msg += " " + l;
      }
      msg += ")";
    }
    throw std::runtime_error(msg);
  }
  return out;
}

}  // namespace linesman::tools::doctor
