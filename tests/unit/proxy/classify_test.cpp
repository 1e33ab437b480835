// classify: the one place a stop is decided (proxy/facts.hpp). One row per scenario of
// tests/integration/test_stop_reasons.py (the facts that scenario produces), plus the edge rows
// found since; the last test fails when a stop reason of the schema has no row.
#include "proxy/facts.hpp"

#include <cerrno>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace linesman::proxy {
namespace {

struct row {
  std::string name;
  connection_facts facts;
  stop_phase phase;
  stop_reason reason;
  stop_by by;
  int err = 0;
  bool ok = false;
};

// Builders for the facts each phase leaves behind.
connection_facts at_inspect(side_end client, std::uint64_t from_client) {
  connection_facts f;
  f.phase = stop_phase::inspect;
  f.client_end = client;
  f.from_client = from_client;
  f.first_close =
      client == side_end::proxy || client == side_end::timeout ? stop_by::proxy : stop_by::client;
  return f;
}

connection_facts connected(std::uint64_t from_client, std::uint64_t from_upstream) {
  connection_facts f;
  f.phase = from_upstream > 0 ? stop_phase::stream : stop_phase::first_reply;
  f.connect = connect_outcome::connected;
  f.from_client = from_client;
  f.from_upstream = from_upstream;
  f.upstream_end = side_end::open;
  f.client_end = side_end::open;
  f.reply = from_upstream > 0 ? reply_verdict::good : reply_verdict::need_more;
  return f;
}

connection_facts ended(connection_facts f, side_end client, side_end upstream, stop_by first) {
  f.client_end = client;
  f.upstream_end = upstream;
  f.first_close = first;
  return f;
}

connection_facts failed_connect(connect_outcome o, int err) {
  connection_facts f;
  f.phase = stop_phase::connect;
  f.connect = o;
  f.connect_err = err;
  f.client_end = side_end::proxy;
  f.first_close = stop_by::upstream;
  return f;
}

template <class F>
connection_facts with(connection_facts f, F change) {
  change(f);
  return f;
}

std::vector<row> rows() {
  using enum stop_reason;
  using sp = stop_phase;
  using sb = stop_by;
  using se = side_end;
  const auto fired = [](connection_facts f) {
    f.fired = timer_fire::deadline;
    return f;
  };
  return {
      // inspect
      {"client_silent", fired(at_inspect(se::timeout, 0)), sp::inspect, client_silent, sb::client},
      {"client_closed", at_inspect(se::fin, 40), sp::inspect, client_closed, sb::client},
      {"client_reset", with(at_inspect(se::rst, 40), [](auto& f) { f.err = ECONNRESET; }),
       sp::inspect, client_reset, sb::client, ECONNRESET},
      {"hello_incomplete", fired(at_inspect(se::timeout, 300)), sp::inspect, hello_incomplete,
       sb::client},
      {"hello_malformed",
       with(at_inspect(se::proxy, 120), [](auto& f) { f.client = client_verdict::malformed; }),
       sp::inspect, hello_malformed, sb::client},
      {"hello_too_large",
       with(at_inspect(se::proxy, 16389), [](auto& f) { f.client = client_verdict::too_large; }),
       sp::inspect, hello_too_large, sb::client},
      {"hello_too_large: a TLS start that never completed",
       with(at_inspect(se::proxy, 16389), [](auto& f) { f.client_tls = true; }), sp::inspect,
       hello_too_large, sb::client},
      {"PROXY header rejected",
       with(at_inspect(se::proxy, 60), [](auto& f) { f.client = client_verdict::malformed; }),
       sp::inspect, hello_malformed, sb::client},
      // route
      {"no_route", with(at_inspect(se::proxy, 517), [](auto& f) { f.phase = sp::route; }),
       sp::route, no_route, sb::proxy},
      // connect
      {"upstream_refused", failed_connect(connect_outcome::refused, ECONNREFUSED), sp::connect,
       upstream_refused, sb::upstream, ECONNREFUSED},
      {"upstream_timeout (OS)", failed_connect(connect_outcome::timed_out, ETIMEDOUT), sp::connect,
       upstream_timeout, sb::upstream, ETIMEDOUT},
      {"upstream_unreachable", failed_connect(connect_outcome::unreachable, EHOSTUNREACH),
       sp::connect, upstream_unreachable, sb::upstream, EHOSTUNREACH},
      {"upstream_resolve_failed", failed_connect(connect_outcome::resolve_failed, 0), sp::connect,
       upstream_resolve_failed, sb::proxy},
      {"upstream_error", failed_connect(connect_outcome::failed, EINVAL), sp::connect,
       upstream_error, sb::proxy, EINVAL},
      {"client_gave_up while connecting",
       with(at_inspect(se::fin, 0),
            [](auto& f) {
              f.phase = sp::connect;
              f.connect = connect_outcome::pending;
            }),
       sp::connect, client_gave_up, sb::client},
      {"client_gave_up while connecting, with a reset",
       with(at_inspect(se::rst, 0),
            [](auto& f) {
              f.phase = sp::connect;
              f.connect = connect_outcome::pending;
            }),
       sp::connect, client_gave_up, sb::client, ECONNRESET},
      // first_reply
      {"upstream_closed_silently", ended(connected(517, 0), se::proxy, se::fin, sb::upstream),
       sp::first_reply, upstream_closed_silently, sb::upstream},
      {"upstream_reset", ended(connected(517, 0), se::proxy, se::rst, sb::upstream),
       sp::first_reply, upstream_reset, sb::upstream, ECONNRESET},
      {"upstream_silent", fired(ended(connected(517, 0), se::timeout, se::timeout, sb::proxy)),
       sp::first_reply, upstream_silent, sb::upstream},
      {"upstream_tls_alert",
       with(ended(connected(517, 7), se::fin, se::fin, sb::upstream),
            [](auto& f) { f.reply = reply_verdict::tls_alert; }),
       sp::first_reply, upstream_tls_alert, sb::upstream},
      {"upstream_not_tls",
       with(ended(connected(517, 40), se::fin, se::fin, sb::upstream),
            [](auto& f) { f.reply = reply_verdict::not_tls; }),
       sp::first_reply, upstream_not_tls, sb::upstream},
      {"upstream_not_tls: a greeting before the hello was complete",
       with(ended(connected(517, 40), se::fin, se::fin, sb::upstream),
            [](auto& f) {
              f.client_spoke_tls = true;
              f.reply_plaintext = true;
            }),
       sp::first_reply, upstream_not_tls, sb::upstream},
      {"upstream_error_reply",
       with(ended(connected(8, 90), se::fin, se::fin, sb::upstream),
            [](auto& f) { f.reply = reply_verdict::error_reply; }),
       sp::first_reply, upstream_error_reply, sb::upstream},
      {"client_gave_up before the reply", ended(connected(517, 0), se::rst, se::proxy, sb::client),
       sp::first_reply, client_gave_up, sb::client, ECONNRESET},
      {"client_gave_up: FIN and the upstream never ended",
       ended(connected(517, 0), se::fin, se::timeout, sb::client), sp::first_reply, client_gave_up,
       sb::client},
      {"client reset before its first byte (connected)",
       ended(connected(0, 0), se::rst, se::proxy, sb::client), sp::inspect, client_reset,
       sb::client, ECONNRESET},
      {"silent client, connected upstream: idle timeout",
       fired(ended(connected(0, 0), se::timeout, se::timeout, sb::proxy)), sp::inspect,
       client_silent, sb::client},
      // stream
      {"completed", ended(connected(5, 5), se::fin, se::fin, sb::client), sp::stream, completed,
       sb::client, 0, true},
      {"completed, upstream first", ended(connected(5, 5), se::fin, se::fin, sb::upstream),
       sp::stream, completed, sb::upstream, 0, true},
      {"client_closed", ended(connected(0, 20), se::fin, se::fin, sb::client), sp::stream,
       client_closed, sb::client, 0, true},
      {"upstream_closed", ended(connected(0, 20), se::fin, se::fin, sb::upstream), sp::stream,
       upstream_closed, sb::upstream, 0, true},
      {"stream client_reset", ended(connected(5, 5), se::rst, se::proxy, sb::client), sp::stream,
       client_reset, sb::client, ECONNRESET},
      {"stream upstream_reset", ended(connected(5, 5), se::proxy, se::rst, sb::upstream),
       sp::stream, upstream_reset, sb::upstream, ECONNRESET},
      {"idle_timeout", fired(ended(connected(5, 5), se::timeout, se::timeout, sb::proxy)),
       sp::stream, idle_timeout, sb::proxy},
      {"proxy_shutdown",
       with(ended(connected(5, 5), se::proxy, se::proxy, sb::proxy),
            [](auto& f) { f.fired = timer_fire::shutdown; }),
       sp::stream, proxy_shutdown, sb::proxy},
      {"proxy_shutdown while inspecting",
       with(at_inspect(se::proxy, 0), [](auto& f) { f.fired = timer_fire::shutdown; }), sp::stream,
       proxy_shutdown, sb::proxy},
      {"proxy_error",
       with(ended(connected(5, 5), se::error, se::proxy, sb::client),
            [](auto& f) { f.err = ETIMEDOUT; }),
       sp::stream, proxy_error, sb::proxy, ETIMEDOUT},
      // An injected reset (proxy/fault_apply.cpp): what the reset peer saw, by the proxy.
      {"fault reset after the hello",
       with(ended(connected(517, 0), se::proxy, se::proxy, sb::proxy),
            [](auto& f) { f.fault_reset = f.fault_reset_client = true; }),
       sp::first_reply, upstream_reset, sb::proxy},
      {"fault reset after the first reply",
       with(ended(connected(517, 800), se::proxy, se::proxy, sb::proxy),
            [](auto& f) { f.fault_reset = f.fault_reset_client = true; }),
       sp::stream, upstream_reset, sb::proxy},
      {"fault reset to the upstream only",
       with(ended(connected(517, 0), se::proxy, se::proxy, sb::proxy),
            [](auto& f) { f.fault_reset = true; }),
       sp::first_reply, client_gave_up, sb::proxy},
  };
}

TEST(Classify, EveryRow) {
  for (const auto& r : rows()) {
    SCOPED_TRACE(r.name);
    const auto d = classify(r.facts);
    EXPECT_EQ(to_string(d.phase), to_string(r.phase));
    EXPECT_EQ(to_string(d.reason), to_string(r.reason));
    EXPECT_EQ(to_string(d.by), to_string(r.by));
    EXPECT_EQ(d.err, r.err);
    EXPECT_EQ(d.ok, r.ok);
    EXPECT_TRUE(reason_allowed_in(d.phase, d.reason));
  }
}

TEST(Classify, OpenConnectionsGetWhatTheirTimerWouldRecord) {
  // Interim records and the live view: the same facts, open, never ok.
  for (const auto& r : rows()) {
    SCOPED_TRACE(r.name);
    auto f = r.facts;
    f.open = true;
    const auto d = classify(f);
    EXPECT_FALSE(d.ok);
    EXPECT_TRUE(reason_allowed_in(d.phase, d.reason));
  }
  connection_facts connecting;
  connecting.phase = stop_phase::connect;
  connecting.connect = connect_outcome::pending;
  connecting.open = true;
  EXPECT_EQ(classify(connecting).reason, stop_reason::upstream_timeout);
  EXPECT_EQ(classify(connecting).err, 0);
  auto waiting = connected(517, 0);
  waiting.open = true;
  EXPECT_EQ(classify(waiting).reason, stop_reason::upstream_silent);
}

TEST(Classify, EverySchemaReasonHasARow) {
  std::ifstream in(std::string(LINESMAN_TEST_DATA) + "/access-log.schema.json");
  const auto schema = nlohmann::json::parse(in);
  std::set<std::string> covered;
  for (const auto& r : rows()) {
    covered.insert(std::string(to_string(classify(r.facts).reason)));
  }
  for (const auto& reason : schema["properties"]["stop"]["properties"]["reason"]["enum"]) {
    EXPECT_TRUE(covered.contains(reason.get<std::string>())) << "no row for " << reason;
  }
}

}  // namespace
}  // namespace linesman::proxy
