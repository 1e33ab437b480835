// facts: what a connection observed on its way, as one plain value, and classify(), the one
// place that turns those facts into the record's stop (phase, reason, by, errno) and outcome.
//
// The connection's phases only record what happened (how each side ended, errno, bytes, the
// verdicts on both first flights, the connect result, whether a timer fired); they never pick a
// stop reason themselves. classify() is pure: the final record, the interim "state": "open"
// records and the live view all call it, so they cannot disagree. Its table test lives in
// tests/unit/proxy/classify_test.cpp.
#pragma once

#include "proxy/access_record.hpp"
#include "proxy/inspect.hpp"
#include "proxy/stop.hpp"

#include <cstdint>
#include <optional>

namespace linesman::proxy {

// timer_fire: what the connection's watchdog did, if anything (peek, connect or idle deadline;
// the drain's shutdown request).
enum class timer_fire : std::uint8_t { none, deadline, shutdown };

// connect_outcome: the upstream connect as far as it got.
enum class connect_outcome : std::uint8_t {
  not_started,
  pending,
  connected,
  refused,         // ECONNREFUSED
  unreachable,     // EHOSTUNREACH, ENETUNREACH
  timed_out,       // ETIMEDOUT from the OS, or the connect timeout fired
  resolve_failed,  // the host name did not resolve
  failed,          // any other error (errno in connect_err)
};

// connection_facts: everything classify() reads. Filled by the connection's phases; `phase` is
// the phase the connection is in (for a finished connection: the phase it ended in).
struct connection_facts {
  stop_phase phase = stop_phase::inspect;
  bool open = false;  // still open: classify what its timer would record if it fired now
  timer_fire fired = timer_fire::none;
  side_end client_end = side_end::none;
  side_end upstream_end = side_end::never;
  std::optional<stop_by> first_close;  // who ended first
  int err = 0;                         // errno of the first OS error that ended a side
  std::uint64_t from_client = 0;
  std::uint64_t from_upstream = 0;
  // The client's first flight: its verdict, whether it starts like a ClientHello, whether that
  // hello is complete, and whether the client is known to speak TLS (a complete hello, or one too
  // large to inspect).
  client_verdict client = client_verdict::need_more;
  bool client_tls = false;
  bool hello_complete = false;
  bool client_spoke_tls = false;
  // The upstream's first flight: its verdict and whether it was TLS (a server that speaks first
  // can answer before the client's hello is complete, so the pair is judged again at the end).
  reply_verdict reply = reply_verdict::need_more;
  bool reply_plaintext = false;  // upstream bytes were seen and they were not TLS
  connect_outcome connect = connect_outcome::not_started;
  int connect_err = 0;
  // An injected reset fault (proxy/fault_apply.cpp) ended the connection; whether the client got
  // the RST (else only the upstream did).
  bool fault_reset = false;
  bool fault_reset_client = false;
};

// stop_decision: classify's answer.
struct stop_decision {
  stop_phase phase = stop_phase::stream;
  stop_reason reason = stop_reason::proxy_error;
  stop_by by = stop_by::proxy;
  int err = 0;      // errno to record (0: none)
  bool ok = false;  // the record's outcome
};

// classify: the stop for `f`. Pure, total (every input gets a stop in the taxonomy), no I/O.
stop_decision classify(const connection_facts& f);

}  // namespace linesman::proxy
