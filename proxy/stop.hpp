// stop: where a connection ended and why, the heart of the access-log record (docs/access-log.md;
// the schema is tests/data/access-log.schema.json). Names here are the schema's and must not
// change.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace linesman::proxy {

enum class stop_phase : std::uint8_t { inspect, route, connect, first_reply, stream };

enum class stop_reason : std::uint8_t {
  // inspect
  client_silent,
  client_closed,
  client_reset,
  hello_incomplete,
  hello_malformed,
  hello_too_large,
  // route
  no_route,
  // connect
  upstream_refused,
  upstream_timeout,
  upstream_unreachable,
  upstream_resolve_failed,
  upstream_error,
  client_gave_up,  // connect and first_reply
  // first_reply
  upstream_closed_silently,
  upstream_reset,  // first_reply and stream
  upstream_silent,
  upstream_tls_alert,
  upstream_not_tls,
  upstream_error_reply,
  // stream
  completed,
  upstream_closed,
  idle_timeout,
  proxy_shutdown,
  proxy_error,
};

enum class stop_by : std::uint8_t { client, upstream, proxy };

std::string_view to_string(stop_phase p);
std::string_view to_string(stop_reason r);
std::string_view to_string(stop_by b);
std::optional<stop_phase> parse_stop_phase(std::string_view s);
std::optional<stop_reason> parse_stop_reason(std::string_view s);

// reason_allowed_in: whether the taxonomy lists `r` under phase `p` (the stop table of
// docs/access-log.md).
bool reason_allowed_in(stop_phase p, stop_reason r);

// default_hint: one sentence for a Traefik user about what this stop usually means and what to
// check. The connection refines it with what it saw (SNI, certificate, upstream summary).
std::string_view default_hint(stop_phase p, stop_reason r);

}  // namespace linesman::proxy
