#include "tools/doctor/kubernetes.hpp"

#include <algorithm>
#include <set>
#include <stdexcept>

namespace linesman::tools::doctor {

namespace {

constexpr std::size_t kMaxKubernetesBytes = 64u << 20;
constexpr const char* kProvider = "kubernetescrd";

// fail: the one way a malformed object is reported: file:line and what was expected.
[[noreturn]] void fail(const cfg_node& at, const std::string& msg) {
  throw std::runtime_error(at.loc.str() + ": " + msg);
}

const char* type_name(const cfg_node& n) {
  switch (n.type) {
    case cfg_node::kind::null:
      return "nothing";
    case cfg_node::kind::scalar:
      return "a scalar";
    case cfg_node::kind::map:
      return "a map";
    case cfg_node::kind::seq:
      return "a list";
  }
  return "nothing";
}

// text_field: the scalar at `key`, "" when absent or null; a map or list there is an error.
std::string text_field(const cfg_node& parent, const char* key, const std::string& what) {
  const auto* v = parent.get(key);
  if (v == nullptr || v->type == cfg_node::kind::null) {
    return {};
  }
  if (v->type != cfg_node::kind::scalar) {
    fail(*v, what + ": " + key + " must be a string, found " + type_name(*v));
  }
  return v->text;
}

// list_field: the items of the list at `key` (none when absent or null).
const std::vector<cfg_node>& list_field(const cfg_node& parent, const char* key,
                                        const std::string& what) {
  static const std::vector<cfg_node> kNone;
  const auto* v = parent.get(key);
  if (v == nullptr || v->type == cfg_node::kind::null) {
    return kNone;
  }
  if (v->type != cfg_node::kind::seq) {
    fail(*v, what + ": " + key + " must be a list, found " + type_name(*v));
  }
  return v->seq;
}

const cfg_node* map_field(const cfg_node& parent, const char* key, const std::string& what) {
  const auto* v = parent.get(key);
  if (v == nullptr || v->type == cfg_node::kind::null) {
    return nullptr;
  }
  if (v->type != cfg_node::kind::map) {
    fail(*v, what + ": " + key + " must be a map, found " + type_name(*v));
  }
  return v;
}

bool is_traefik_group(const std::string& api_version) {
  return api_version == "traefik.io/v1alpha1" || api_version == "traefik.containo.us/v1alpha1";
}

bool is_number(const std::string& s) {
  return !s.empty() && s.size() <= 5 &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

struct object_meta {
  std::string ns;
  std::string name;
  std::string id() const { return ns + "/" + name; }
};

object_meta read_meta(const cfg_node& obj, const std::string& kind) {
  const auto* meta = map_field(obj, "metadata", kind);
  if (meta == nullptr) {
    fail(obj, kind + " without metadata");
  }
  object_meta m;
  m.name = text_field(*meta, "name", kind + " metadata");
  if (m.name.empty()) {
    m.name = text_field(*meta, "generateName", kind + " metadata");
  }
  if (m.name.empty()) {
    fail(*meta, kind + " without metadata.name");
  }
  m.ns = text_field(*meta, "namespace", kind + " " + m.name + " metadata");
  if (m.ns.empty()) {
    m.ns = "default";  // what kubectl apply uses without a namespace in the context
  }
  return m;
}

void read_route_tls(const cfg_node& spec, const std::string& what, router_tls& tls,
                    k8s_reference& option_ref, bool& has_option_ref) {
  const auto* t = spec.get("tls");
  if (t == nullptr || t->type == cfg_node::kind::null) {
    return;  // `tls:` with no value decodes to no TLS section in Traefik too
  }
  if (t->type != cfg_node::kind::map) {
    fail(*t, what + ": spec.tls must be a map, found " + type_name(*t));
  }
  tls.present = true;
  tls.loc = spec.key_loc("tls");
  const std::string passthrough = text_field(*t, "passthrough", what + " spec.tls");
  if (passthrough == "true" || passthrough == "True") {
    tls.passthrough = true;
    tls.passthrough_loc = t->key_loc("passthrough");
  }
  for (const auto* key : {"certResolver", "options", "domains"}) {
    const auto* v = t->get(key);
    if (v == nullptr || v->type == cfg_node::kind::null ||
        (v->type == cfg_node::kind::scalar && v->text.empty())) {
      continue;
    }
    if (tls.extra_loc.line == 0) {
      tls.extra_loc = t->key_loc(key);
    }
  }
  tls.cert_resolver = text_field(*t, "certResolver", what + " spec.tls");
  tls.has_domains = !list_field(*t, "domains", what + " spec.tls").empty();
  if (const auto* o = map_field(*t, "options", what + " spec.tls")) {
    const auto name = text_field(*o, "name", what + " spec.tls.options");
    if (!name.empty()) {
      option_ref.what = k8s_reference::kind::tls_option;
      option_ref.name = name;
      option_ref.ns = text_field(*o, "namespace", what + " spec.tls.options");
      option_ref.loc = o->key_loc("name");
      has_option_ref = true;
      tls.options = name;
    }
  }
}

void read_ingressroutetcp(const cfg_node& obj, traefik_config& out) {
  const auto meta = read_meta(obj, "IngressRouteTCP");
  const std::string what = "IngressRouteTCP " + meta.id();
  const auto* spec = map_field(obj, "spec", what);
  if (spec == nullptr) {
    fail(obj, what + " without spec");
  }
  const auto* eps_node = spec->get("entryPoints");
  std::vector<std::string> eps;
  for (const auto& e : list_field(*spec, "entryPoints", what + " spec")) {
    if (e.type != cfg_node::kind::scalar) {
      fail(e, what + ": spec.entryPoints must list names, found " + type_name(e));
    }
    eps.push_back(e.text);
  }
  router_tls tls;
  k8s_reference option_ref;
  bool has_option_ref = false;
  read_route_tls(*spec, what, tls, option_ref, has_option_ref);

  const auto* routes_node = spec->get("routes");
  if (routes_node == nullptr) {
    fail(*spec, what + " without spec.routes");
  }
  const auto& routes = list_field(*spec, "routes", what + " spec");
  for (std::size_t i = 0; i < routes.size(); ++i) {
    const auto& route = routes[i];
    const std::string rwhat = what + " spec.routes[" + std::to_string(i) + "]";
    if (route.type != cfg_node::kind::map) {
      fail(route, rwhat + " must be a map, found " + type_name(route));
    }
    tcp_router r;
    r.name = meta.id() + (routes.size() > 1 ? ".routes[" + std::to_string(i) + "]" : "");
    r.provider = kProvider;
    r.loc = route.loc;
    r.has_entry_points = eps_node != nullptr && eps_node->type != cfg_node::kind::null;
    r.entry_points = eps;
    r.entry_points_loc = r.has_entry_points ? spec->key_loc("entryPoints") : source_loc{};
    if (const auto* m = route.get("match"); m != nullptr && m->type != cfg_node::kind::null) {
      r.rule = text_field(route, "match", rwhat);
      r.rule_loc = route.key_loc("match");
      if (m->loc.line == r.rule_loc.line && m->loc.col > 0) {
        r.rule_col = m->loc.col + (m->quoted ? 1 : 0);
      }
    }
    r.rule_syntax = text_field(route, "syntax", rwhat);
    r.tls = tls;
    const std::size_t index = out.tcp_routers.size();
    out.tcp_routers.push_back(std::move(r));

    auto reference = [&](k8s_reference::kind k, const std::string& name, const std::string& ns,
                         source_loc loc) {
      k8s_reference ref;
      ref.what = k;
      ref.router = index;
      ref.parent_ns = meta.ns;
      ref.provider_ref = name.find('@') != std::string::npos;
      ref.name = name;
      ref.ns = ns.empty() ? meta.ns : ns;
      ref.loc = std::move(loc);
      return ref;
    };
    const auto& middlewares = list_field(route, "middlewares", rwhat);
    for (std::size_t j = 0; j < middlewares.size(); ++j) {
      const auto& m = middlewares[j];
      const std::string mwhat = rwhat + ".middlewares[" + std::to_string(j) + "]";
      if (m.type != cfg_node::kind::map) {
        fail(m, mwhat + " must be a map, found " + type_name(m));
      }
      const auto name = text_field(m, "name", mwhat);
      if (name.empty()) {
        fail(m, mwhat + " without name");
      }
      out.kubernetes.references.push_back(reference(k8s_reference::kind::middleware, name,
                                                    text_field(m, "namespace", mwhat),
                                                    m.key_loc("name")));
    }
    const auto& services = list_field(route, "services", rwhat);
    for (std::size_t j = 0; j < services.size(); ++j) {
      const auto& s = services[j];
      const std::string swhat = rwhat + ".services[" + std::to_string(j) + "]";
      if (s.type != cfg_node::kind::map) {
        fail(s, swhat + " must be a map, found " + type_name(s));
      }
      const auto name = text_field(s, "name", swhat);
      if (name.empty()) {
        fail(s, swhat + " without name (the Kubernetes Service to send connections to)");
      }
      auto ref = reference(k8s_reference::kind::service, name, text_field(s, "namespace", swhat),
                           s.key_loc("name"));
      ref.provider_ref = false;  // a Service name has no provider part
      ref.port = text_field(s, "port", swhat);
      ref.port_loc = s.get("port") != nullptr ? s.key_loc("port") : s.loc;
      ref.has_port = !ref.port.empty() && ref.port != "0";
      // port is an IntOrString: a quoted "5432" is a port *name*, as Kubernetes decodes it.
      const auto* port_node = s.get("port");
      ref.port_named =
          ref.has_port && (!is_number(ref.port) || (port_node != nullptr && port_node->quoted));
      const auto transport = text_field(s, "serversTransport", swhat);
      out.kubernetes.references.push_back(std::move(ref));
      if (!transport.empty()) {
        // Traefik looks the transport up in the IngressRouteTCP's namespace.
        out.kubernetes.references.push_back(reference(k8s_reference::kind::servers_transport,
                                                      transport, meta.ns,
                                                      s.key_loc("serversTransport")));
      }
    }
    if (i == 0 && has_option_ref) {
      auto ref = reference(k8s_reference::kind::tls_option, option_ref.name, option_ref.ns,
                           option_ref.loc);
      out.kubernetes.references.push_back(std::move(ref));
    }
  }
}

void read_service(const cfg_node& obj, traefik_config& out) {
  const auto meta = read_meta(obj, "Service");
  const std::string what = "Service " + meta.id();
  k8s_service s;
  s.ns = meta.ns;
  s.name = meta.name;
  s.loc = obj.loc;
  if (const auto* m = obj.get("metadata"); m != nullptr && m->get("name") != nullptr) {
    s.loc = m->key_loc("name");
  }
  if (const auto* spec = map_field(obj, "spec", what)) {
    s.external_name = text_field(*spec, "type", what + " spec") == "ExternalName";
    for (const auto& p : list_field(*spec, "ports", what + " spec")) {
      if (p.type != cfg_node::kind::map) {
        fail(p, what + ": spec.ports must list maps, found " + type_name(p));
      }
      s.ports.emplace_back(text_field(p, "name", what + " spec.ports[]"),
                           text_field(p, "port", what + " spec.ports[]"));
    }
  }
  out.kubernetes.have_services = true;
  out.kubernetes.services.push_back(std::move(s));
}

void read_object(const cfg_node& obj, traefik_config& out) {
  if (obj.type != cfg_node::kind::map) {
    fail(obj, std::string("expected a Kubernetes object (a map with apiVersion and kind), found ") +
                  type_name(obj));
  }
  const auto kind = text_field(obj, "kind", "object");
  const auto api_version = text_field(obj, "apiVersion", "object");
  if (kind.empty()) {
    fail(obj, "object without kind (expected kubectl get ... -o yaml output)");
  }
  if (kind == "List" || (kind.size() > 4 && kind.ends_with("List") && obj.get("items"))) {
    for (const auto& item : list_field(obj, "items", kind)) {
      if (item.type == cfg_node::kind::map) {
        const auto inner = text_field(item, "kind", "List item");
        if (inner == "List" || inner.ends_with("List")) {
          fail(item, "a List inside a List");
        }
      }
      read_object(item, out);
    }
    return;
  }
  const bool traefik_kind = kind == "IngressRouteTCP" || kind == "MiddlewareTCP" ||
                            kind == "TLSOption" || kind == "ServersTransportTCP";
  if (traefik_kind && !is_traefik_group(api_version)) {
    out.kubernetes.unknown_api_versions.emplace_back(
        kind + " (apiVersion: " + (api_version.empty() ? "none" : api_version) + ")", obj.loc);
    return;
  }
  if (kind == "IngressRouteTCP") {
    read_ingressroutetcp(obj, out);
  } else if (kind == "MiddlewareTCP") {
    out.kubernetes.middlewares.push_back(read_meta(obj, kind).id());
  } else if (kind == "TLSOption") {
    out.kubernetes.tls_options.push_back(read_meta(obj, kind).id());
  } else if (kind == "ServersTransportTCP") {
    out.kubernetes.servers_transports.push_back(read_meta(obj, kind).id());
  } else if (kind == "Service" && api_version == "v1") {
    read_service(obj, out);
  }  // other kinds (IngressRoute, Secrets, ...) mean nothing to the TCP checks
}

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

void read_kubernetes_text(const std::string& text, const std::string& file, traefik_config& out) {
  const auto docs = parse_yaml_documents(text, file);
  if (docs.empty()) {
    throw std::runtime_error(file +
                             ": no YAML document; expected the output of kubectl get "
                             "ingressroutetcp,...,service -A -o yaml");
  }
  for (const auto& doc : docs) {
    read_object(doc, out);
  }
  if (std::find(out.kubernetes_files.begin(), out.kubernetes_files.end(), file) ==
      out.kubernetes_files.end()) {
    out.kubernetes_files.push_back(file);
  }
}

void read_kubernetes(const std::string& path, traefik_config& out) {
  read_kubernetes_text(read_input_file(path, kMaxKubernetesBytes), path, out);
}

std::vector<finding> check_kubernetes(const traefik_config& cfg) {
  std::vector<finding> out;
  const auto& k = cfg.kubernetes;
  for (const auto& [what, loc] : k.unknown_api_versions) {
    out.push_back({severity::warning, "crd_api_version_unknown", loc, "", "", "",
                   what + " is neither traefik.io/v1alpha1 nor traefik.containo.us/v1alpha1; "
                          "Traefik does not read it and linesman did not check it",
                   "use apiVersion: traefik.io/v1alpha1 (Traefik v3; traefik.containo.us is "
                   "Traefik v2 only)"});
  }
  std::set<std::size_t> routers_with_service;
  for (const auto& ref : k.references) {
    if (ref.router >= cfg.tcp_routers.size()) {
      continue;
    }
    const auto& r = cfg.tcp_routers[ref.router];
    const auto rq = qualified(r.name, r.provider);
    const auto eps = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
    const std::string ep0 = eps.empty() ? std::string{} : eps.front();
    const std::string id = ref.ns + "/" + ref.name;
    auto add = [&](severity s, std::string code, source_loc loc, std::string msg, std::string fix,
                   std::string svc = {}) {
      out.push_back({s, std::move(code), std::move(loc), ep0, rq, std::move(svc), std::move(msg),
                     std::move(fix)});
    };
    const char* kind_name = "Service";
    switch (ref.what) {
      case k8s_reference::kind::service:
        kind_name = "Service";
        routers_with_service.insert(ref.router);
        break;
      case k8s_reference::kind::middleware:
        kind_name = "MiddlewareTCP";
        break;
      case k8s_reference::kind::servers_transport:
        kind_name = "ServersTransportTCP";
        break;
      case k8s_reference::kind::tls_option:
        kind_name = "TLSOption";
        break;
    }
    if (ref.what == k8s_reference::kind::service && !ref.has_port) {
      add(severity::error, "service_port_missing", ref.port_loc,
          "router " + rq + " sends to Service " + id +
              " without a port; Traefik rejects it (\"ingressRoute service port not defined\") and "
              "the route has nowhere to send connections",
          "add port: with the Service's port number or port name", id);
    }
    if (ref.provider_ref) {
      continue;  // name@provider: an object of another provider, not in this file
    }
    if (cfg.have_static && !cfg.k8s_allow_cross_namespace && ref.ns != ref.parent_ns) {
      add(severity::error, "cross_namespace_disallowed", ref.loc,
          "router " + rq + " references " + std::string(kind_name) + " " + id +
              " in another namespace than its own (" + ref.parent_ns +
              "); allowCrossNamespace is off, so Traefik refuses the reference",
          "move the " + std::string(kind_name) + " to namespace " + ref.parent_ns +
              ", or set providers.kubernetesCRD.allowCrossNamespace: true in the static "
              "configuration",
          ref.what == k8s_reference::kind::service ? id : std::string{});
      continue;
    }
    switch (ref.what) {
      case k8s_reference::kind::service: {
        if (!k.have_services) {
          break;  // reported once below
        }
        const auto it = std::find_if(k.services.begin(), k.services.end(), [&](const auto& s) {
          return s.ns == ref.ns && s.name == ref.name;
        });
        if (it == k.services.end()) {
          std::string fix = "create Service " + id + ", or fix the name or namespace";
          for (const auto& s : k.services) {
            if (s.name == ref.name) {
              fix = "a Service " + s.name + " exists in namespace " + s.ns + " (" + s.loc.str() +
                    "): set namespace: " + s.ns;
              if (!cfg.k8s_allow_cross_namespace) {
                fix +=
                    " and allow it with providers.kubernetesCRD.allowCrossNamespace: true, or "
                    "move the IngressRouteTCP to namespace " +
                    s.ns;
              }
            }
          }
          add(severity::error, "service_not_found", ref.loc,
              "router " + rq + " sends to Service " + id +
                  ", which is not in the input; Traefik reports \"service not found\" and the "
                  "route has nowhere to send connections",
              fix, id);
          break;
        }
        if (!ref.has_port) {
          break;
        }
        const bool found = std::any_of(it->ports.begin(), it->ports.end(), [&](const auto& p) {
          return ref.port_named ? p.first == ref.port : p.second == ref.port;
        });
        if (!found && (ref.port_named || !it->external_name)) {
          std::string have;
          for (const auto& [pname, pnum] : it->ports) {
            have += (have.empty() ? "" : ", ") + (pname.empty() ? pnum : pname + " (" + pnum + ")");
          }
          add(severity::error, "service_port_not_found", ref.port_loc,
              "router " + rq + " uses " + std::string(ref.port_named ? "port name " : "port ") +
                  ref.port + " of Service " + id + ", which has " +
                  (have.empty() ? std::string("no ports") : "only: " + have) +
                  "; Traefik reports \"service port not found\" and the route has nowhere to send "
                  "connections",
              have.empty() ? "add the port to the Service's spec.ports"
                           : "use one of the Service's ports (" + have + ")",
              id);
        }
        break;
      }
      case k8s_reference::kind::middleware:
        if (!contains(k.middlewares, id)) {
          add(severity::error, "middleware_not_found", ref.loc,
              "router " + rq + " uses MiddlewareTCP " + id +
                  ", which is not in the input; Traefik disables the route",
              "create MiddlewareTCP " + id +
                  " or fix the name; if it exists, include middlewaretcp in kubectl get");
        }
        break;
      case k8s_reference::kind::servers_transport:
        if (!contains(k.servers_transports, id)) {
          add(severity::error, "serverstransport_not_found", ref.loc,
              "router " + rq + " uses ServersTransportTCP " + id +
                  " (looked up in the IngressRouteTCP's namespace), which is not in the input; "
                  "Traefik cannot build the service and the route has nowhere to send connections",
              "create ServersTransportTCP " + ref.name + " in namespace " + ref.ns +
                  ", or fix the name; if it exists, include serverstransporttcp in kubectl get");
        }
        break;
      case k8s_reference::kind::tls_option:
        if (!contains(k.tls_options, id)) {
          add(severity::error, "tlsoption_not_found", ref.loc,
              "router " + rq + " uses TLSOption " + id +
                  ", which is not in the input; Traefik reports unknown TLS options and closes "
                  "every TLS connection that matches the route",
              "create TLSOption " + id +
                  " or fix name/namespace; if it exists, include tlsoption in kubectl get");
        }
        break;
    }
  }
  for (std::size_t i = 0; i < cfg.tcp_routers.size(); ++i) {
    const auto& r = cfg.tcp_routers[i];
    if (r.provider != kProvider || routers_with_service.count(i) != 0) {
      continue;
    }
    const auto eps = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
    out.push_back({severity::error, "service_missing", r.loc, eps.empty() ? "" : eps.front(),
                   qualified(r.name, r.provider), "",
                   "router " + qualified(r.name, r.provider) +
                       " has no services; Traefik has nowhere to send its connections",
                   "add services: [{name: SERVICE, port: PORT}] to the route"});
  }
  if (!k.have_services &&
      std::any_of(k.references.begin(), k.references.end(),
                  [](const auto& ref) { return ref.what == k8s_reference::kind::service; })) {
    out.push_back({severity::info,
                   "services_unchecked",
                   {},
                   "",
                   "",
                   "",
                   "the Kubernetes input has no Service objects, so the services the routes name "
                   "and their ports were not checked",
                   "add service to the kinds: kubectl get ingressroutetcp,middlewaretcp,tlsoption,"
                   "serverstransporttcp,service -A -o yaml"});
  }
  return out;
}

}  // namespace linesman::tools::doctor
