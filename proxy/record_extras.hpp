// record_extras: the fields of a record that neither ECS nor the OpenTelemetry semantic
// conventions name, written under `linesman.*` by both mappings from one list. `Out` is
// record_format.cpp's nested_fields (ECS: nested objects) or otlp_attributes (OTel: flat dotted
// attribute keys); both offer begin/end/str/num/ms/flag/list/json and skip what is null.
#pragma once

#include "proxy/access_record.hpp"

namespace linesman::proxy::extras {

template <class Out>
void endpoint(Out& o, std::string_view k, const endpoint_value& e) {
  o.begin(k);
  o.str("ip", e.ip);
  o.num("port", e.port);
  o.end();
}

template <class Out>
void first_flight(Out& o, std::string_view k, const first_flight_obs& f) {
  o.begin(k);
  o.str("protocol", f.protocol);
  if (!f.summary.empty()) {
    o.str("summary", f.summary);
  }
  o.num("bytes", f.bytes);
  o.end();
}

template <class Out>
void stop_and_close(Out& o, const access_record& r) {
  o.begin("stop");
  o.str("phase", to_string(r.stop.phase));
  o.str("reason", to_string(r.stop.reason));
  o.str("by", to_string(r.stop.by));
  if (!r.stop.errno_name.empty()) {
    o.str("errno", r.stop.errno_name);
  }
  o.end();
  o.begin("close");
  if (r.close.first) {
    o.str("first", to_string(*r.close.first));
  }
  if (r.close.client != side_end::none) {
    o.str("client", to_string(r.close.client));
  }
  if (r.close.upstream != side_end::none) {
    o.str("upstream", to_string(r.close.upstream));
  }
  o.end();
}

template <class Out>
void timing(Out& o, const timing_value& t) {
  o.begin("timing_ms");
  o.ms("client_first_byte", t.client_first_byte);
  o.ms("hello_complete", t.hello_complete);
  o.ms("upstream_connected", t.upstream_connected);
  o.ms("upstream_first_byte", t.upstream_first_byte);
  o.end();
}

// tls: the ClientHello fields without the standard ones (sni, ja3).
template <class Out>
void tls(Out& o, const tls_obs& t) {
  o.begin("tls");
  o.str("ja4", t.ja4.view());
  o.list("alpn", t.alpn);
  o.str("legacy_version", t.legacy_version_name().view());
  o.list("supported_versions", version_names(t.supported_versions));
  if (t.versions_truncated()) {
    o.flag("versions_truncated", true);
  }
  o.num("cipher_count", t.cipher_count);
  o.flag("ech", t.ech);
  if (t.ech_config_id >= 0) {
    o.num("ech_config_id", static_cast<int>(t.ech_config_id));
  }
  o.list("supported_groups", group_names(t.supported_groups));
  o.list("key_share_groups", group_names(t.key_share_groups));
  o.flag("pq_key_share", t.pq_key_share());
  if (t.groups_truncated()) {
    o.flag("groups_truncated", true);
  }
  if (t.sni_read > 0) {
    o.num("sni_read", t.sni_read);
  }
  o.num("hello_bytes", t.hello_bytes);
  o.num("hello_records", t.hello_records);
  o.num("hello_reads", t.hello_reads);
  o.flag("complete", t.complete);
  o.end();
}

// server_tls: the alert and certificate (version and cipher have standard fields).
template <class Out>
void server_tls(Out& o, const server_tls_obs& s) {
  if (!s.alert && !s.certificate) {
    return;
  }
  o.begin("server_tls");
  if (s.alert) {
    o.begin("alert");
    o.str("level", s.alert->level_name().view());
    o.str("description", s.alert->description().view());
    o.num("code", static_cast<int>(s.alert->code));
    o.end();
  }
  if (s.certificate) {
    o.begin("certificate");
    o.str("subject", s.certificate->subject);
    o.str("issuer", s.certificate->issuer);
    if (!s.certificate->san.empty()) {
      o.list("san", s.certificate->san);
    }
    o.end();
  }
  o.end();
}

template <class Out>
void proxy_protocol(Out& o, const access_record& r) {
  if (r.proxy_protocol) {
    const auto& p = *r.proxy_protocol;
    o.begin("proxy_protocol");
    if (p.version != 0) {
      o.num("version", p.version);
      o.str("command", p.command);
    }
    if (p.source) {
      endpoint(o, "source", *p.source);
    }
    if (p.destination) {
      endpoint(o, "destination", *p.destination);
    }
    if (!p.tlvs.is_null()) {
      o.json("tlvs", p.tlvs);
    }
    o.flag("forwarded", p.forwarded);
    if (!p.error.empty()) {
      o.str("error", p.error);
    }
    o.end();
  }
  if (r.proxy_out) {
    o.begin("proxy_protocol_out");
    o.num("version", r.proxy_out->version);
    endpoint(o, "source", r.proxy_out->source);
    endpoint(o, "destination", r.proxy_out->destination);
    if (!r.proxy_out->authority.empty()) {
      o.str("authority", r.proxy_out->authority);
    }
    o.num("bytes", r.proxy_out->bytes);
    o.end();
  }
}

// common: everything under linesman.* that both mappings write.
template <class Out>
void common(Out& o, const access_record& r) {
  o.str("listener", r.listener);
  if (r.route) {
    o.str("route", *r.route);
  }
  if (r.upstream) {
    o.begin("upstream");
    o.str("name", r.upstream->name);
    o.str("address", r.upstream->address);
    if (r.upstream->local_port != 0) {
      o.num("local_port", r.upstream->local_port);
    }
    o.end();
  }
  stop_and_close(o, r);
  timing(o, r.timing);
  if (r.client_first) {
    first_flight(o, "client_first", *r.client_first);
  }
  if (r.upstream_first) {
    first_flight(o, "upstream_first", *r.upstream_first);
  }
  if (r.tls) {
    tls(o, *r.tls);
  }
  if (r.server_tls) {
    server_tls(o, *r.server_tls);
  }
  proxy_protocol(o, r);
  if (r.original_dst) {
    endpoint(o, "original_dst", *r.original_dst);
  }
  if (!r.transparent_error.empty()) {
    o.str("transparent_error", r.transparent_error);
  }
  if (r.capture) {
    o.str("capture", *r.capture);
  }
  if (!r.warnings.empty()) {
    o.list("warnings", r.warnings);
  }
  if (r.open_state) {
    o.str("state", "open");
  }
  if (r.fault) {
    // The injected fault (proxy/fault.hpp); its params as given, as strings.
    o.begin("fault");
    o.str("name", r.fault->name);
    o.begin("params");
    for (const auto& [k, v] : r.fault->params) {
      o.str(k, v);
    }
    o.end();
    o.end();
  }
}

}  // namespace linesman::proxy::extras
