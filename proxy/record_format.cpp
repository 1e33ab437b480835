#include "proxy/record_format.hpp"

#include "proxy/config.hpp"
#include "proxy/json_writer.hpp"
#include "proxy/record_extras.hpp"

#include <unistd.h>

#include <climits>

namespace linesman::proxy {
namespace {

// kEcsVersion: the ECS release whose field reference the ecs mapping follows.
constexpr std::string_view kEcsVersion = "8.11.0";

// nested_fields: record_extras' output as nested JSON objects (ECS `linesman.*`).
struct nested_fields {
  json_writer& w;
  void begin(std::string_view k) {
    w.key(k);
    w.begin_object();
  }
  void end() { w.end_object(); }
  void str(std::string_view k, std::string_view v) { w.member(k, v); }
  void num(std::string_view k, std::int64_t v) { w.member_int(k, v); }
  void num(std::string_view k, std::uint64_t v) { w.member_uint(k, v); }
  void num(std::string_view k, int v) { w.member_int(k, v); }
  void num(std::string_view k, std::uint32_t v) { w.member_uint(k, v); }
  void num(std::string_view k, std::uint16_t v) { w.member_uint(k, v); }
  void ms(std::string_view k, std::int64_t us) {
    if (us >= 0) {
      w.key(k);
      w.millis(us);
    }
  }
  void flag(std::string_view k, bool v) { w.member_bool(k, v); }
  void list(std::string_view k, const std::vector<std::string>& v) {
    w.key(k);
    w.begin_array();
    for (const auto& s : v) {
      w.string(s);
    }
    w.end_array();
  }
  void json(std::string_view k, const nlohmann::json& v) {
    w.key(k);
    w.raw(v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
};

// network_type: "ipv6" for an address with a colon, else "ipv4".
std::string_view network_type(const std::string& ip) {
  return ip.find(':') != std::string::npos ? "ipv6" : "ipv4";
}

// ecs_protocol: ECS network.protocol (lowercase application protocol) for a first flight's
// protocol; empty when there is none to name.
std::string_view ecs_protocol(const std::string& p) {
  if (p == "http1" || p == "http2") {
    return "http";
  }
  if (p == "postgres" || p == "postgres_ssl_request") {
    return "postgresql";
  }
  if (p == "none" || p == "unknown" || p == "proxy_v1" || p == "proxy_v2") {
    return {};
  }
  return p;  // tls, redis, ssh, mysql, smtp
}

// tls_established: the upstream answered the ClientHello with a ServerHello (a version and a
// cipher, no alert) and the connection went on to relay bytes. linesman does not terminate TLS,
// so this is what the first flights show, not a finished handshake.
bool tls_established(const access_record& r) {
  return r.server_tls && r.server_tls->cipher && !r.server_tls->alert &&
         r.stop.phase == stop_phase::stream;
}

std::string_view sni_of(const access_record& r) {
  return r.tls && r.tls->sni ? std::string_view(*r.tls->sni) : std::string_view();
}

void ecs_event(json_writer& w, const access_record& r) {
  w.key("event");
  w.begin_object();
  w.member("kind", "event");
  w.key("category");
  w.begin_array();
  w.string("network");
  w.end_array();
  w.key("type");
  w.begin_array();
  w.string("connection");
  w.string(r.open_state ? "info" : "end");
  w.end_array();
  w.member("id", r.id);
  w.member("dataset", "linesman.access");
  w.member("start", format_rfc3339_us(r.ts));
  w.member("end", format_rfc3339_us(r.ts + std::chrono::microseconds(r.duration_us)));
  w.member_int("duration", r.duration_us * 1000);  // ECS: nanoseconds
  w.member("outcome", r.open_state ? "unknown" : r.ok ? "success" : "failure");
  w.member("reason", to_string(r.stop.reason));
  w.end_object();
}

// ecs_peer: source/client (the client) or destination/server (the upstream once connected).
void ecs_peer(json_writer& w, std::string_view k, std::string_view ip, std::uint16_t port,
              std::uint64_t bytes, std::string_view domain) {
  w.key(k);
  w.begin_object();
  if (!ip.empty()) {
    w.member("ip", ip);
    w.member("address", ip);
    w.member_uint("port", port);
  }
  if (!domain.empty()) {
    w.member("domain", domain);
  }
  w.member_uint("bytes", bytes);
  w.end_object();
}

void ecs_endpoints(json_writer& w, const access_record& r) {
  const std::string_view sni = sni_of(r);
  const std::string_view up_ip = r.upstream ? std::string_view(r.upstream->ip) : "";
  const std::uint16_t up_port = r.upstream ? r.upstream->port : 0;
  for (const auto* k : {"source", "client"}) {
    ecs_peer(w, k, r.client.ip, r.client.port, r.bytes.from_client, "");
  }
  for (const auto* k : {"destination", "server"}) {
    ecs_peer(w, k, up_ip, up_port, r.bytes.from_upstream, sni);
  }
  w.key("network");
  w.begin_object();
  w.member("transport", "tcp");
  w.member("type", network_type(r.client.ip));
  if (r.client_first) {
    if (const auto p = ecs_protocol(r.client_first->protocol); !p.empty()) {
      w.member("protocol", p);
    }
  }
  w.member_uint("bytes", r.bytes.from_client + r.bytes.from_upstream);
  w.end_object();
}

void ecs_tls(json_writer& w, const access_record& r) {
  if (!r.tls && !r.server_tls) {
    return;
  }
  w.key("tls");
  w.begin_object();
  if (r.tls) {
    w.key("client");
    w.begin_object();
    if (r.tls->sni) {
      w.member("server_name", *r.tls->sni);
    }
    w.member("ja3", r.tls->ja3.view());
    w.end_object();
  }
  if (r.server_tls && r.server_tls->version) {
    w.member("version", r.server_tls->version_name().view());
    w.member("version_protocol", "tls");
  }
  if (r.server_tls && r.server_tls->cipher) {
    w.member("cipher", r.server_tls->cipher_name().view());
  }
  w.member_bool("established", tls_established(r));
  w.end_object();
}

void ecs_linesman(json_writer& w, const access_record& r) {
  w.key("linesman");
  w.begin_object();
  nested_fields o{w};
  o.str("hint", r.hint);
  extras::endpoint(o, "local", r.local);
  o.begin("bytes");
  o.num("to_upstream", r.bytes.to_upstream);
  o.num("to_client", r.bytes.to_client);
  o.end();
  extras::common(o, r);
  w.end_object();
}

}  // namespace

std::string_view to_string(log_format f) {
  switch (f) {
    case log_format::linesman:
      return "linesman";
    case log_format::ecs:
      return "ecs";
    case log_format::otel:
      return "otel";
  }
  return "linesman";
}

log_format parse_log_format(std::string_view text, std::string_view what) {
  for (const auto f : {log_format::linesman, log_format::ecs, log_format::otel}) {
    if (text == to_string(f)) {
      return f;
    }
  }
  throw config_error(std::string(what) + ": unknown log format '" + std::string(text) +
                     "' (use linesman, ecs or otel)");
}

std::string local_host_name() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
    return "localhost";
  }
  return buf;
}

void append_ecs(std::string& out, const access_record& r, const record_style& style) {
  json_writer w(out);
  w.begin_object();
  w.member("@timestamp", format_rfc3339_us(r.ts));
  w.key("ecs");
  w.begin_object();
  w.member("version", kEcsVersion);
  w.end_object();
  ecs_event(w, r);
  w.member("message", r.hint);
  ecs_endpoints(w, r);
  ecs_tls(w, r);
  w.key("observer");
  w.begin_object();
  w.member("hostname", style.host_name);
  w.member("product", "linesman");
  w.member("type", "proxy");
  w.end_object();
  w.key("host");
  w.begin_object();
  w.member("name", style.host_name);
  w.end_object();
  ecs_linesman(w, r);
  w.end_object();
}

void append_record(std::string& out, const access_record& r, const record_style& style) {
  switch (style.format) {
    case log_format::linesman:
      append_linesman(out, r);
      break;
    case log_format::ecs:
      append_ecs(out, r, style);
      break;
    case log_format::otel:
      append_otel(out, r, style);
      break;
  }
  out += '\n';
}

}  // namespace linesman::proxy
