// The linesman mapping: the schema's own field names. Members are written in the order
// nlohmann::json (a sorted map) dumps them, so the output is byte-identical to the tree path
// (tests/unit/proxy/record_format_test.cpp compares the two).
#include "proxy/json_writer.hpp"
#include "proxy/record_format.hpp"
#include "tls/names.hpp"

namespace linesman::proxy {
namespace {

void endpoint(json_writer& w, std::string_view k, const endpoint_value& e) {
  w.key(k);
  w.begin_object();
  w.member("ip", e.ip);
  w.member_uint("port", e.port);
  w.end_object();
}

void millis_or_null(json_writer& w, std::string_view k, std::int64_t us) {
  w.key(k);
  if (us < 0) {
    w.null();
  } else {
    w.millis(us);
  }
}

void side(json_writer& w, std::string_view k, side_end e) {
  w.key(k);
  if (e == side_end::none) {
    w.null();
  } else {
    w.word(to_string(e));
  }
}

void strings(json_writer& w, std::string_view k, const std::vector<std::string>& v) {
  w.key(k);
  w.begin_array();
  for (const auto& s : v) {
    w.string(s);
  }
  w.end_array();
}

void first_flight(json_writer& w, std::string_view k, const first_flight_obs& f) {
  w.key(k);
  w.begin_object();
  w.member_uint("bytes", f.bytes);
  w.member("protocol", f.protocol);
  if (!f.summary.empty()) {
    w.member("summary", f.summary);
  }
  w.end_object();
}

void close_object(json_writer& w, const close_value& c) {
  w.key("close");
  w.begin_object();
  side(w, "client", c.client);
  w.key("first");
  if (c.first) {
    w.word(to_string(*c.first));
  } else {
    w.null();
  }
  side(w, "upstream", c.upstream);
  w.end_object();
}

void proxy_protocol(json_writer& w, const proxy_protocol_value& p) {
  w.key("proxy_protocol");
  w.begin_object();
  if (p.version != 0) {
    w.member("command", p.command);
  }
  if (p.destination) {
    endpoint(w, "destination", *p.destination);
  }
  if (!p.error.empty()) {
    w.member("error", p.error);
  }
  w.member_bool("forwarded", p.forwarded);
  if (p.source) {
    endpoint(w, "source", *p.source);
  }
  if (!p.tlvs.is_null()) {
    // PROXY TLVs are rare and already a tree (proxy_protocol.cpp builds them).
    w.key("tlvs");
    w.raw(p.tlvs.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }
  if (p.version != 0) {
    w.member_int("version", p.version);
  }
  w.end_object();
}

void proxy_out(json_writer& w, const proxy_out_value& p) {
  w.key("proxy_protocol_out");
  w.begin_object();
  if (!p.authority.empty()) {
    w.member("authority", p.authority);
  }
  w.member_uint("bytes", p.bytes);
  endpoint(w, "destination", p.destination);
  endpoint(w, "source", p.source);
  w.member_int("version", p.version);
  w.end_object();
}

void server_tls(json_writer& w, const server_tls_obs& s) {
  w.key("server_tls");
  w.begin_object();
  if (s.alert) {
    w.key("alert");
    w.begin_object();
    w.member_int("code", s.alert->code);
    w.member_word("description", s.alert->description().view());
    w.member_word("level", s.alert->level_name().view());
    w.end_object();
  }
  if (s.certificate) {
    w.key("certificate");
    w.begin_object();
    w.member("issuer", s.certificate->issuer);
    if (!s.certificate->san.empty()) {
      strings(w, "san", s.certificate->san);
    }
    w.member("subject", s.certificate->subject);
    w.end_object();
  }
  if (s.cipher) {
    w.member_word("cipher", s.cipher_name().view());
  }
  if (s.version) {
    w.member_word("version", s.version_name().view());
  }
  w.end_object();
}

void stop_object(json_writer& w, const stop_value& s) {
  w.key("stop");
  w.begin_object();
  w.member_word("by", to_string(s.by));
  if (!s.errno_name.empty()) {
    w.member_word("errno", s.errno_name);
  }
  w.member_word("phase", to_string(s.phase));
  w.member_word("reason", to_string(s.reason));
  w.end_object();
}

void timing(json_writer& w, const timing_value& t) {
  w.key("timing_ms");
  w.begin_object();
  millis_or_null(w, "client_first_byte", t.client_first_byte);
  millis_or_null(w, "hello_complete", t.hello_complete);
  millis_or_null(w, "upstream_connected", t.upstream_connected);
  millis_or_null(w, "upstream_first_byte", t.upstream_first_byte);
  w.end_object();
}

// codes: a list named only here, as the record is written (the record keeps the codes).
template <std::size_t N>
void codes(json_writer& w, std::string_view k, const code_list<N>& list,
           tls::code_name (*name)(std::uint16_t)) {
  w.key(k);
  w.begin_array();
  for (std::uint16_t code : list.view()) {
    w.word(name(code).view());
  }
  w.end_array();
}

void int_or_null(json_writer& w, std::string_view k, std::int64_t v, bool present) {
  w.key(k);
  if (present) {
    w.integer(v);
  } else {
    w.null();
  }
}

void tls(json_writer& w, const tls_obs& t) {
  w.key("tls");
  w.begin_object();
  strings(w, "alpn", t.alpn);
  w.member_int("cipher_count", t.cipher_count);
  w.member_bool("complete", t.complete);
  w.member_bool("ech", t.ech);
  int_or_null(w, "ech_config_id", t.ech_config_id, t.ech_config_id >= 0);
  if (t.groups_truncated()) {
    w.member_bool("groups_truncated", true);
  }
  w.member_uint("hello_bytes", t.hello_bytes);
  w.member_int("hello_reads", t.hello_reads);
  w.member_int("hello_records", t.hello_records);
  w.member_word("ja3", t.ja3.view());
  w.member_word("ja4", t.ja4.view());
  codes(w, "key_share_groups", t.key_share_groups, tls::group_name);
  w.member_word("legacy_version", t.legacy_version_name().view());
  w.member_bool("pq_key_share", t.pq_key_share());
  w.key("sni");
  if (t.sni) {
    w.string(*t.sni);
  } else {
    w.null();
  }
  int_or_null(w, "sni_read", t.sni_read, t.sni_read > 0);
  codes(w, "supported_groups", t.supported_groups, tls::group_name);
  codes(w, "supported_versions", t.supported_versions, tls::version_name);
  if (t.versions_truncated()) {
    w.member_bool("versions_truncated", true);
  }
  w.end_object();
}

void upstream(json_writer& w, const std::optional<upstream_value>& u) {
  w.key("upstream");
  if (!u) {
    w.null();
    return;
  }
  w.begin_object();
  w.member("address", u->address);
  const bool connected = !u->ip.empty();
  if (connected) {
    w.member("ip", u->ip);
  }
  if (u->local_port != 0) {
    w.member_uint("local_port", u->local_port);
  }
  w.member("name", u->name);
  if (connected) {
    w.member_uint("port", u->port);
  }
  w.end_object();
}

// Members from "bytes" to "outcome".
void first_half(json_writer& w, const access_record& r) {
  w.key("bytes");
  w.begin_object();
  w.member_uint("from_client", r.bytes.from_client);
  w.member_uint("from_upstream", r.bytes.from_upstream);
  w.member_uint("to_client", r.bytes.to_client);
  w.member_uint("to_upstream", r.bytes.to_upstream);
  w.end_object();
  if (r.capture) {
    w.member("capture", *r.capture);
  }
  endpoint(w, "client", r.client);
  if (r.client_first) {
    first_flight(w, "client_first", *r.client_first);
  }
  close_object(w, r.close);
  if (r.config_generation != 0) {
    w.member_uint("config_generation", r.config_generation);
  }
  w.key("duration_ms");
  w.millis(r.duration_us);
  if (r.fault) {
    w.key("fault");
    w.raw(fault_json(*r.fault).dump());
  }
  w.member("hint", r.hint);
  w.member("id", r.id);
  w.member("listener", r.listener);
  endpoint(w, "local", r.local);
  if (r.original_dst) {
    endpoint(w, "original_dst", *r.original_dst);
  }
  w.member_word("outcome", r.ok ? "ok" : "failed");
}

// Members from "proxy_protocol" to "warnings".
void second_half(json_writer& w, const access_record& r) {
  if (r.proxy_protocol) {
    proxy_protocol(w, *r.proxy_protocol);
  }
  if (r.proxy_out) {
    proxy_out(w, *r.proxy_out);
  }
  w.key("route");
  if (r.route) {
    w.string(*r.route);
  } else {
    w.null();
  }
  if (r.server_tls) {
    server_tls(w, *r.server_tls);
  }
  if (r.open_state) {
    w.member_word("state", "open");
  }
  stop_object(w, r.stop);
  timing(w, r.timing);
  if (r.tls) {
    tls(w, *r.tls);
  }
  if (!r.transparent_error.empty()) {
    w.member("transparent_error", r.transparent_error);
  }
  w.member("ts", format_rfc3339_us(r.ts));
  upstream(w, r.upstream);
  if (r.upstream_first) {
    first_flight(w, "upstream_first", *r.upstream_first);
  }
  if (!r.warnings.empty()) {
    strings(w, "warnings", r.warnings);
  }
}

}  // namespace

void append_linesman(std::string& out, const access_record& r) {
  json_writer w(out);
  w.begin_object();
  first_half(w, r);
  second_half(w, r);
  w.end_object();
}

}  // namespace linesman::proxy
