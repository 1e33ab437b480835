#include "proxy/stop.hpp"

#include "proxy/facts.hpp"

#include <array>
#include <cerrno>
#include <utility>

namespace linesman::proxy {
namespace {

struct reason_row {
  stop_reason reason;
  std::string_view name;
};

constexpr std::array kReasons = {
    reason_row{stop_reason::client_silent, "client_silent"},
    reason_row{stop_reason::client_closed, "client_closed"},
    reason_row{stop_reason::client_reset, "client_reset"},
    reason_row{stop_reason::hello_incomplete, "hello_incomplete"},
    reason_row{stop_reason::hello_malformed, "hello_malformed"},
    reason_row{stop_reason::hello_too_large, "hello_too_large"},
    reason_row{stop_reason::no_route, "no_route"},
    reason_row{stop_reason::upstream_refused, "upstream_refused"},
    reason_row{stop_reason::upstream_timeout, "upstream_timeout"},
    reason_row{stop_reason::upstream_unreachable, "upstream_unreachable"},
    reason_row{stop_reason::upstream_resolve_failed, "upstream_resolve_failed"},
    reason_row{stop_reason::upstream_error, "upstream_error"},
    reason_row{stop_reason::client_gave_up, "client_gave_up"},
    reason_row{stop_reason::upstream_closed_silently, "upstream_closed_silently"},
    reason_row{stop_reason::upstream_reset, "upstream_reset"},
    reason_row{stop_reason::upstream_silent, "upstream_silent"},
    reason_row{stop_reason::upstream_tls_alert, "upstream_tls_alert"},
    reason_row{stop_reason::upstream_not_tls, "upstream_not_tls"},
    reason_row{stop_reason::upstream_error_reply, "upstream_error_reply"},
    reason_row{stop_reason::completed, "completed"},
    reason_row{stop_reason::upstream_closed, "upstream_closed"},
    reason_row{stop_reason::idle_timeout, "idle_timeout"},
    reason_row{stop_reason::proxy_shutdown, "proxy_shutdown"},
    reason_row{stop_reason::proxy_error, "proxy_error"},
};

constexpr std::array<std::string_view, 5> kPhases = {"inspect", "route", "connect", "first_reply",
                                                     "stream"};

struct hint_row {
  stop_phase phase;
  stop_reason reason;
  std::string_view hint;
};

// The taxonomy (the stop table of docs/access-log.md) with one hint per allowed (phase, reason)
// pair.
constexpr std::array kHints = {
    hint_row{stop_phase::inspect, stop_reason::client_silent,
             "The client connected but sent nothing before the peek timeout: a server-speaks-first "
             "protocol (SSH, SMTP, MySQL) needs a listener without SNI routes, or the client is "
             "waiting for something else."},
    hint_row{stop_phase::inspect, stop_reason::client_closed,
             "The client closed before sending a complete first flight: check the client's own "
             "error (certificate, timeout) and that it targets the right port."},
    hint_row{stop_phase::inspect, stop_reason::client_reset,
             "The client reset the connection before its first flight was complete: check the "
             "client's error and any firewall or load balancer in front of it."},
    hint_row{stop_phase::inspect, stop_reason::hello_incomplete,
             "The ClientHello never completed within the peek timeout: a middlebox may cut "
             "segments or the client stalled; compare the bytes seen with a capture."},
    hint_row{stop_phase::inspect, stop_reason::hello_malformed,
             "The client sent bytes that start like TLS but are not a valid ClientHello: Traefik's "
             "HostSNI routing cannot read it either; check the client's TLS library."},
    hint_row{stop_phase::inspect, stop_reason::hello_too_large,
             "The ClientHello is larger than the inspection limit: raise the limit, and note that "
             "Traefik also has to read the whole hello before HostSNI routing can match."},
    hint_row{stop_phase::route, stop_reason::no_route,
             "No route matched this connection's SNI: in Traefik this is a TCP router whose "
             "HostSNI does not match (or a client that sends no SNI); check the rule and that the "
             "router has tls set."},
    hint_row{stop_phase::connect, stop_reason::upstream_refused,
             "Nothing listens on the upstream address: in Traefik, check that the entrypoint "
             "exists in the static configuration and bound its port (traefik logs at start), or "
             "that the service's server address and port are right."},
    hint_row{stop_phase::connect, stop_reason::upstream_timeout,
             "The upstream did not answer the TCP handshake in time: a firewall drops the SYN or "
             "the address is wrong; check the service address and network policies."},
    hint_row{stop_phase::connect, stop_reason::upstream_unreachable,
             "The network said the upstream cannot be reached (no route to host or network): "
             "check the service address, the container network and routes."},
    hint_row{stop_phase::connect, stop_reason::upstream_resolve_failed,
             "The upstream host name does not resolve: check the service address spelling and "
             "the DNS the proxy uses (container names resolve only on their network)."},
    hint_row{stop_phase::connect, stop_reason::upstream_error,
             "Connecting to the upstream failed with an unexpected error: see stop.errno and "
             "check the upstream address."},
    hint_row{stop_phase::connect, stop_reason::client_gave_up,
             "The client closed while linesman was still connecting upstream: the upstream is "
             "slow to accept; check its load and the connect path."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_closed_silently,
             "The upstream accepted and closed without sending a byte: in Traefik this is what an "
             "entrypoint does when no TCP router matches (a Host() rule on a TCP router, or a "
             "domain HostSNI on a router without tls); check the router rule and tls section."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_reset,
             "The upstream reset the connection before answering: the backend rejected the "
             "protocol or the port belongs to something else; check what listens there."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_silent,
             "The upstream accepted but never answered: it may wait for a protocol the client does "
             "not speak (TLS vs. plaintext, PROXY protocol), or a server-speaks-first greeting "
             "never came."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_tls_alert,
             "The upstream answered the ClientHello with a TLS alert: check the SNI, the "
             "certificates and TLS options of the router (or backend) that answered."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_not_tls,
             "The client spoke TLS but the upstream answered in plaintext: TLS passthrough goes to "
             "a backend that does not speak TLS, or another program holds the port; check the "
             "service address and the router's tls.passthrough."},
    hint_row{stop_phase::first_reply, stop_reason::upstream_error_reply,
             "The upstream answered with a protocol-level refusal (see upstream_first.summary): "
             "for PostgreSQL 'no encryption' the backend requires TLS, so the route must pass TLS "
             "through or the client must use sslmode=require."},
    hint_row{stop_phase::first_reply, stop_reason::client_gave_up,
             "The client closed before the upstream answered: the upstream is slow, or the client "
             "expected a different protocol; check the client's timeout and error."},
    hint_row{stop_phase::stream, stop_reason::completed,
             "The connection ended normally after both sides spoke."},
    hint_row{stop_phase::stream, stop_reason::client_closed,
             "The client closed the connection after the upstream answered; usually a normal end "
             "initiated by the client."},
    hint_row{stop_phase::stream, stop_reason::upstream_closed,
             "The upstream closed the connection after answering; usually a normal end initiated "
             "by the server, or a backend timeout."},
    hint_row{stop_phase::stream, stop_reason::client_reset,
             "The client reset an established connection: check the client's error and idle "
             "timeouts of anything between it and Traefik."},
    hint_row{stop_phase::stream, stop_reason::upstream_reset,
             "The upstream reset an established connection: check the backend's logs and idle "
             "timeouts (Traefik's respondingTimeouts, the backend's own)."},
    hint_row{stop_phase::stream, stop_reason::idle_timeout,
             "No byte moved in either direction for the idle timeout: a hang or a long-lived "
             "idle connection; compare with Traefik's and the backend's idle timeouts."},
    hint_row{stop_phase::stream, stop_reason::proxy_shutdown,
             "linesman was shutting down and the connection did not finish within the drain "
             "timeout."},
    hint_row{stop_phase::stream, stop_reason::proxy_error,
             "linesman hit an internal error forwarding this connection (see stop.errno); this "
             "is not the route's fault."},
};

}  // namespace

std::string_view to_string(stop_phase p) { return kPhases.at(static_cast<std::size_t>(p)); }

std::string_view to_string(stop_reason r) {
  for (const auto& row : kReasons) {
    if (row.reason == r) {
      return row.name;
    }
  }
  return "proxy_error";
}

std::string_view to_string(stop_by b) {
  switch (b) {
    case stop_by::client:
      return "client";
    case stop_by::upstream:
      return "upstream";
    case stop_by::proxy:
      return "proxy";
  }
  return "proxy";
}

std::optional<stop_phase> parse_stop_phase(std::string_view s) {
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    if (kPhases.at(i) == s) {
      return static_cast<stop_phase>(i);
    }
  }
  return std::nullopt;
}

std::optional<stop_reason> parse_stop_reason(std::string_view s) {
  for (const auto& row : kReasons) {
    if (row.name == s) {
      return row.reason;
    }
  }
  return std::nullopt;
}

bool reason_allowed_in(stop_phase p, stop_reason r) {
  for (const auto& row : kHints) {
    if (row.phase == p && row.reason == r) {
      return true;
    }
  }
  return false;
}

std::string_view default_hint(stop_phase p, stop_reason r) {
  for (const auto& row : kHints) {
    if (row.phase == p && row.reason == r) {
      return row.hint;
    }
  }
  return "linesman recorded an unexpected stop; please report it with the record.";
}

// ---------------------------------------------------------------------------- classify
//
// Each phase has its own short rule below; classify() only dispatches. The order of the checks
// inside a rule is the precedence the taxonomy needs (a timer beats how a side ended; a named
// refusal in the reply beats how the upstream closed).
namespace {

constexpr stop_decision stop_of(stop_phase p, stop_reason r, stop_by by, int err = 0) {
  return stop_decision{p, r, by, err, false};
}

bool waiting(const connection_facts& f) { return f.open || f.fired == timer_fire::deadline; }

bool ended_in_error(const connection_facts& f) {
  return f.client_end == side_end::error || f.upstream_end == side_end::error;
}

// classify_inspect: the client's first flight did not get through inspection.
stop_decision classify_inspect(const connection_facts& f) {
  using enum stop_reason;
  if (waiting(f)) {
    return stop_of(stop_phase::inspect, f.from_client == 0 ? client_silent : hello_incomplete,
                   stop_by::client);
  }
  if (f.client_end == side_end::fin) {
    return stop_of(stop_phase::inspect, client_closed, stop_by::client);
  }
  if (f.client_end == side_end::rst || f.client_end == side_end::error) {
    return stop_of(stop_phase::inspect, client_reset, stop_by::client, f.err);
  }
  if (f.client == client_verdict::malformed) {
    return stop_of(stop_phase::inspect, hello_malformed, stop_by::client);
  }
  if (f.client == client_verdict::too_large || (f.client_tls && !f.hello_complete)) {
    return stop_of(stop_phase::inspect, hello_too_large, stop_by::client);
  }
  return stop_of(stop_phase::inspect, hello_incomplete, stop_by::client);
}

// classify_connect: the upstream connect failed, or the client left while it was pending.
stop_decision classify_connect(const connection_facts& f) {
  using enum stop_reason;
  constexpr auto kPhase = stop_phase::connect;
  switch (f.connect) {
    case connect_outcome::refused:
      return stop_of(kPhase, upstream_refused, stop_by::upstream, f.connect_err);
    case connect_outcome::unreachable:
      return stop_of(kPhase, upstream_unreachable, stop_by::upstream, f.connect_err);
    case connect_outcome::timed_out:
      return stop_of(kPhase, upstream_timeout, stop_by::upstream, f.connect_err);
    case connect_outcome::resolve_failed:
      return stop_of(kPhase, upstream_resolve_failed, stop_by::proxy);
    case connect_outcome::failed:
      return stop_of(kPhase, upstream_error, stop_by::proxy, f.connect_err);
    case connect_outcome::not_started:
    case connect_outcome::pending:
    case connect_outcome::connected:
      break;
  }
  if (waiting(f)) {
    return stop_of(kPhase, upstream_timeout, stop_by::upstream, f.open ? 0 : ETIMEDOUT);
  }
  return stop_of(kPhase, client_gave_up, stop_by::client,
                 f.client_end == side_end::rst ? ECONNRESET : 0);
}

// classify_no_reply: connected, and the upstream never sent a byte.
stop_decision classify_no_reply(const connection_facts& f) {
  using enum stop_reason;
  constexpr auto kPhase = stop_phase::first_reply;
  if (waiting(f)) {
    if (f.from_client == 0 && f.first_close == stop_by::client) {
      return stop_of(kPhase, client_gave_up, stop_by::client);
    }
    if (f.from_client == 0) {
      return stop_of(stop_phase::inspect, client_silent, stop_by::client);
    }
    return stop_of(kPhase, upstream_silent, stop_by::upstream);
  }
  if (ended_in_error(f)) {
    return stop_of(stop_phase::stream, proxy_error, stop_by::proxy, f.err);
  }
  const bool client_first = f.first_close == stop_by::client;
  if (client_first && f.client_end == side_end::rst && f.from_client == 0) {
    // A reset before the client's first byte: the client never started its first flight.
    return stop_of(stop_phase::inspect, client_reset, stop_by::client, ECONNRESET);
  }
  const bool upstream_ended_itself =
      f.upstream_end == side_end::fin || f.upstream_end == side_end::rst;
  if (client_first &&
      (f.client_end == side_end::rst || f.from_client == 0 || !upstream_ended_itself)) {
    return stop_of(kPhase, client_gave_up, stop_by::client,
                   f.client_end == side_end::rst ? ECONNRESET : 0);
  }
  if (f.upstream_end == side_end::rst) {
    return stop_of(kPhase, upstream_reset, stop_by::upstream, ECONNRESET);
  }
  return stop_of(kPhase, upstream_closed_silently, stop_by::upstream);
}

// classify_stream: the upstream answered; how did the conversation end?
stop_decision classify_stream(const connection_facts& f) {
  using enum stop_reason;
  constexpr auto kPhase = stop_phase::stream;
  if (waiting(f)) {
    return stop_of(kPhase, idle_timeout, stop_by::proxy);
  }
  if (ended_in_error(f)) {
    return stop_of(kPhase, proxy_error, stop_by::proxy, f.err);
  }
  if (f.first_close == stop_by::client && f.client_end == side_end::rst) {
    return stop_of(kPhase, client_reset, stop_by::client, ECONNRESET);
  }
  if (f.first_close == stop_by::upstream && f.upstream_end == side_end::rst) {
    return stop_of(kPhase, upstream_reset, stop_by::upstream, ECONNRESET);
  }
  stop_decision d;
  if (f.client_end == side_end::fin && f.upstream_end == side_end::fin && f.from_client > 0) {
    d = stop_of(kPhase, completed,
                f.first_close == stop_by::upstream ? stop_by::upstream : stop_by::client);
  } else if (f.first_close == stop_by::client) {
    d = stop_of(kPhase, client_closed, stop_by::client);
  } else {
    d = stop_of(kPhase, upstream_closed, stop_by::upstream);
  }
  d.ok = !f.open;
  return d;
}

// classify_exchange: connected; the first reply's verdict comes first, then how it ended.
stop_decision classify_exchange(const connection_facts& f) {
  using enum stop_reason;
  if (f.fault_reset) {
    // Linesman reset on purpose: the reason is what the reset peer saw, by the proxy.
    const bool stream = f.from_upstream > 0;
    const stop_reason r =
        f.fault_reset_client ? upstream_reset : (stream ? client_reset : client_gave_up);
    return stop_of(stream ? stop_phase::stream : stop_phase::first_reply, r, stop_by::proxy);
  }
  reply_verdict reply = f.reply;
  if (reply == reply_verdict::good && f.client_spoke_tls && f.reply_plaintext) {
    reply = reply_verdict::not_tls;  // a greeting that came before the hello was complete
  }
  switch (reply) {
    case reply_verdict::tls_alert:
      return stop_of(stop_phase::first_reply, upstream_tls_alert, stop_by::upstream);
    case reply_verdict::not_tls:
      return stop_of(stop_phase::first_reply, upstream_not_tls, stop_by::upstream);
    case reply_verdict::error_reply:
      return stop_of(stop_phase::first_reply, upstream_error_reply, stop_by::upstream);
    case reply_verdict::need_more:
    case reply_verdict::good:
      break;
  }
  return f.from_upstream == 0 ? classify_no_reply(f) : classify_stream(f);
}

}  // namespace

stop_decision classify(const connection_facts& f) {
  if (f.fired == timer_fire::shutdown) {
    return stop_of(stop_phase::stream, stop_reason::proxy_shutdown, stop_by::proxy);
  }
  switch (f.phase) {
    case stop_phase::inspect:
      return classify_inspect(f);
    case stop_phase::route:
      return stop_of(stop_phase::route, stop_reason::no_route, stop_by::proxy);
    case stop_phase::connect:
      return classify_connect(f);
    case stop_phase::first_reply:
    case stop_phase::stream:
      break;
  }
  return classify_exchange(f);
}

}  // namespace linesman::proxy
