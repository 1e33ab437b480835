// access_record: the access-log record of one connection (tests/data/access-log.schema.json), a
// plain value filled in along the connection's life by the connection that owns it and serialized
// once, on the log sink's thread, by append_record (proxy/record_format.hpp).
#pragma once

#include "proxy/boxed.hpp"
#include "proxy/observation.hpp"
#include "proxy/stop.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::proxy {

struct endpoint_value {
  std::string ip;
  std::uint16_t port = 0;
};

// side_end: how one side of the connection ended (schema `close.client` / `close.upstream`).
enum class side_end : std::uint8_t { none, fin, rst, timeout, error, proxy, never, open };
std::string_view to_string(side_end e);

struct upstream_value {
  std::string name;
  std::string address;  // as configured, host:port
  std::string ip;       // empty until connected
  std::uint16_t port = 0;
  std::uint16_t local_port = 0;
};

// event_us: microseconds since accept, or -1 when the event never happened (JSON null).
struct timing_value {
  std::int64_t client_first_byte = -1;
  std::int64_t hello_complete = -1;
  std::int64_t upstream_connected = -1;
  std::int64_t upstream_first_byte = -1;
};

struct bytes_value {
  std::uint64_t from_client = 0;
  std::uint64_t to_upstream = 0;
  std::uint64_t from_upstream = 0;
  std::uint64_t to_client = 0;
};

struct close_value {
  std::optional<stop_by> first;  // null when nothing closed (never in a finished record)
  side_end client = side_end::none;
  side_end upstream = side_end::never;
};

struct stop_value {
  stop_phase phase = stop_phase::stream;
  stop_reason reason = stop_reason::proxy_error;
  stop_by by = stop_by::proxy;
  std::string errno_name;  // "ECONNREFUSED"; omitted when empty
};

// proxy_protocol_value: a PROXY protocol header received from the client side (schema
// `proxy_protocol`). `error` names what was wrong with it (untrusted_source, malformed,
// incomplete, missing, version_mismatch) when the connection was ended for it; empty otherwise.
struct proxy_protocol_value {
  int version = 0;      // 1 or 2; 0 when no header could be read
  std::string command;  // "proxy" or "local"
  std::optional<endpoint_value> source;
  std::optional<endpoint_value> destination;
  nlohmann::json tlvs;  // by name: alpn, authority, unique_id, netns, ssl, crc32c, other
  bool forwarded = false;
  std::string error;
};

// proxy_out_value: the PROXY header linesman wrote upstream (record `proxy_protocol_out`).
struct proxy_out_value {
  int version = 0;
  endpoint_value source;
  endpoint_value destination;
  std::string authority;  // v2: the SNI sent as PP2_TYPE_AUTHORITY
  std::size_t bytes = 0;
};

// fault_value: the injected fault applied to the connection (record `fault`): its name and every
// key=value it was given, in order (proxy/fault.hpp). Values that are plain numbers are
// serialized as JSON numbers, the rest as strings.
struct fault_value {
  std::string name;
  std::vector<std::pair<std::string, std::string>> params;
};

// fault_json: the record's `fault` object (both serializers write exactly this).
nlohmann::json fault_json(const fault_value& f);

struct access_record {
  std::chrono::system_clock::time_point ts;  // accept time
  std::string id;
  std::string listener;
  endpoint_value client;
  endpoint_value local;
  std::int64_t duration_us = 0;
  bytes_value bytes;
  timing_value timing;
  close_value close;
  stop_value stop;
  bool ok = false;  // outcome
  std::string hint;
  // The optional parts most connections never fill are boxed (heap, a pointer while empty):
  // an idle connection's memory is mostly this record.
  std::optional<std::string> route;  // null when no route was taken
  std::optional<upstream_value> upstream;
  std::optional<first_flight_obs> client_first;
  std::optional<first_flight_obs> upstream_first;
  boxed<tls_obs> tls;
  boxed<server_tls_obs> server_tls;
  boxed<proxy_protocol_value> proxy_protocol;
  boxed<proxy_out_value> proxy_out;
  boxed<endpoint_value> original_dst;  // transparent mode
  std::string transparent_error;       // "redirect_loop", "no_original_dst"
  // capture: the connection's capture file name, relative to the listener's capture directory
  // (`<id>.pcapng`); omitted when capture is off or could not start.
  std::optional<std::string> capture;
  // warnings: named warnings whatever the outcome (schema `warnings`), e.g. hello_many_records,
  // forwarding_loop;
  // omitted when empty.
  std::vector<std::string> warnings;
  boxed<fault_value> fault;  // omitted when no fault applied
  // open_state: an interim record of a connection still open (--log-open-every): serialized as
  // "state": "open". Final records carry no "state" field.
  bool open_state = false;
  // config_generation: the configuration generation the connection was accepted with (1 at
  // start, one more per good reload); 0 = unknown (omitted).
  std::uint64_t config_generation = 0;
};

// format_rfc3339_us: "2026-11-26T12:00:00.123456Z".
std::string format_rfc3339_us(std::chrono::system_clock::time_point t);

// errno_name: the symbolic name of an errno value ("ECONNREFUSED"), or "E<number>" if unknown.
std::string errno_name(int err);

// to_json: the record as an nlohmann tree. The log sink no longer uses it; it is the reference the
// json_writer output is compared with, byte for byte (record_format_test, record_bench).
void to_json(nlohmann::json& j, const access_record& r);

}  // namespace linesman::proxy
