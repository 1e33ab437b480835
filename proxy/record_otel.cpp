// The otel mapping: one OTLP JSON ExportLogsServiceRequest per line (the protobuf JSON mapping:
// lowerCamelCase field names, 64-bit integers as strings, enums as numbers), which the
// OpenTelemetry Collector's otlpjsonfile receiver reads. Attribute names follow the semantic
// conventions; the rest goes under linesman.* as flat dotted keys.
#include "proxy/json_writer.hpp"
#include "proxy/record_extras.hpp"
#include "proxy/record_format.hpp"

#include <charconv>

namespace linesman::proxy {
namespace {

// otlp_attributes: an OTLP KeyValue list; nested names become dotted keys under a prefix.
// Null values (events that never happened) are left out: OTLP has no null.
class otlp_attributes {
 public:
  otlp_attributes(json_writer& w, std::string prefix) : w_(w), prefix_(std::move(prefix)) {}

  void begin(std::string_view k) {
    prefix_ += k;
    prefix_ += '.';
  }
  void end() {
    prefix_.pop_back();
    prefix_.resize(prefix_.rfind('.') + 1);
  }
  void str(std::string_view k, std::string_view v) {
    open(k, "stringValue");
    w_.string(v);
    close();
  }
  void num(std::string_view k, std::int64_t v) { int_value(k, std::to_string(v)); }
  void num(std::string_view k, std::uint64_t v) { int_value(k, std::to_string(v)); }
  void num(std::string_view k, int v) { int_value(k, std::to_string(v)); }
  void num(std::string_view k, std::uint32_t v) { int_value(k, std::to_string(v)); }
  void num(std::string_view k, std::uint16_t v) { int_value(k, std::to_string(v)); }
  void ms(std::string_view k, std::int64_t us) {
    if (us >= 0) {
      open(k, "doubleValue");
      w_.millis(us);
      close();
    }
  }
  void flag(std::string_view k, bool v) {
    open(k, "boolValue");
    w_.boolean(v);
    close();
  }
  void list(std::string_view k, const std::vector<std::string>& v) {
    open(k, "arrayValue");
    w_.begin_object();
    w_.key("values");
    w_.begin_array();
    for (const auto& s : v) {
      w_.begin_object();
      w_.member("stringValue", s);
      w_.end_object();
    }
    w_.end_array();
    w_.end_object();
    close();
  }
  // json: a nested value (PROXY TLVs) as its JSON text.
  void json(std::string_view k, const nlohmann::json& v) {
    str(k, v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

 private:
  // int_value: OTLP intValue is an int64, a string in the JSON mapping.
  void int_value(std::string_view k, const std::string& digits) {
    open(k, "intValue");
    w_.string(digits);
    close();
  }
  void open(std::string_view k, std::string_view type) {
    w_.begin_object();
    w_.key("key");
    name_.assign(prefix_);
    name_ += k;
    w_.string(name_);
    w_.key("value");
    w_.begin_object();
    w_.key(type);
  }
  void close() {
    w_.end_object();
    w_.end_object();
  }

  json_writer& w_;
  std::string prefix_;
  std::string name_;
};

std::string unix_nanos(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// instance_id: the process run's id tag, the part of every connection id before its dash.
std::string_view instance_id(const std::string& id) {
  return std::string_view(id).substr(0, std::min(id.rfind('-'), id.size()));
}

void resource(json_writer& w, const access_record& r, const record_style& style) {
  w.key("resource");
  w.begin_object();
  w.key("attributes");
  w.begin_array();
  otlp_attributes a(w, "");
  a.str("service.name", "linesman");
  a.str("service.instance.id", instance_id(r.id));
  a.str("host.name", style.host_name);
  w.end_array();
  w.end_object();
}

void semconv_attributes(otlp_attributes& a, const access_record& r) {
  a.str("network.transport", "tcp");
  a.str("network.type", r.client.ip.find(':') != std::string::npos ? "ipv6" : "ipv4");
  a.str("network.peer.address", r.client.ip);
  a.num("network.peer.port", r.client.port);
  a.str("network.local.address", r.local.ip);
  a.num("network.local.port", r.local.port);
  const bool connected = r.upstream && !r.upstream->ip.empty();
  if (r.tls && r.tls->sni) {
    a.str("server.address", *r.tls->sni);
  } else if (connected) {
    a.str("server.address", r.upstream->ip);
  }
  if (connected) {
    a.num("server.port", r.upstream->port);
    a.str("destination.address", r.upstream->ip);
    a.num("destination.port", r.upstream->port);
  }
  if (r.tls) {
    a.str("tls.client.ja3", r.tls->ja3.view());
  }
  if (r.server_tls && r.server_tls->version) {
    a.str("tls.protocol.name", "tls");
    a.str("tls.protocol.version", r.server_tls->version_name().view());
  }
  if (r.server_tls && r.server_tls->cipher) {
    a.str("tls.cipher", r.server_tls->cipher_name().view());
  }
  if (r.tls || r.server_tls) {
    a.flag("tls.established", r.server_tls && r.server_tls->cipher && !r.server_tls->alert &&
                                  r.stop.phase == stop_phase::stream);
  }
}

void linesman_attributes(otlp_attributes& a, const access_record& r) {
  a.begin("linesman");
  a.str("id", r.id);
  a.str("outcome", r.ok ? "ok" : "failed");
  a.ms("duration_ms", r.duration_us);
  a.begin("bytes");
  a.num("from_client", r.bytes.from_client);
  a.num("to_upstream", r.bytes.to_upstream);
  a.num("from_upstream", r.bytes.from_upstream);
  a.num("to_client", r.bytes.to_client);
  a.end();
  extras::common(a, r);
  a.end();
}

void log_record(json_writer& w, const access_record& r) {
  w.begin_object();
  w.member("timeUnixNano", unix_nanos(r.ts));
  w.member("observedTimeUnixNano", unix_nanos(r.ts + std::chrono::microseconds(r.duration_us)));
  // SeverityNumber: INFO = 9, WARN = 13. A failed connection is what a user looks for.
  const bool warn = !r.ok && !r.open_state;
  w.member_int("severityNumber", warn ? 13 : 9);
  w.member("severityText", warn ? "WARN" : "INFO");
  w.key("body");
  w.begin_object();
  w.member("stringValue", r.hint);
  w.end_object();
  w.key("attributes");
  w.begin_array();
  otlp_attributes a(w, "");
  semconv_attributes(a, r);
  linesman_attributes(a, r);
  w.end_array();
  w.end_object();
}

}  // namespace

void append_otel(std::string& out, const access_record& r, const record_style& style) {
  json_writer w(out);
  w.begin_object();
  w.key("resourceLogs");
  w.begin_array();
  w.begin_object();
  resource(w, r, style);
  w.key("scopeLogs");
  w.begin_array();
  w.begin_object();
  w.key("scope");
  w.begin_object();
  w.member("name", "linesman");
  w.end_object();
  w.key("logRecords");
  w.begin_array();
  log_record(w, r);
  w.end_array();
  w.end_object();
  w.end_array();
  w.end_object();
  w.end_array();
  w.end_object();
}

}  // namespace linesman::proxy
