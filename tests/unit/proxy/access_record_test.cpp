#include "proxy/access_record.hpp"

#include "proxy/hint.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

const char* const kRequired[] = {"ts",    "id",          "listener", "client",
                                 "local", "duration_ms", "bytes",    "timing_ms",
                                 "close", "stop",        "outcome",  "hint"};

TEST(RecordJson, MinimalRecordHasEveryRequiredFieldAndNulls) {
  access_record r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456LL));
  r.id = "abc-1";
  r.listener = "edge";
  r.client = {"127.0.0.1", 5555};
  r.local = {"127.0.0.1", 8443};
  r.close.client = side_end::proxy;
  r.stop = {stop_phase::route, stop_reason::no_route, stop_by::proxy, ""};
  r.hint = hint_for(r);
  const nlohmann::json j = r;
  for (const char* k : kRequired) {
    EXPECT_TRUE(j.contains(k)) << k;
  }
  EXPECT_EQ(j["ts"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["client"]["port"], 5555);
  EXPECT_TRUE(j["timing_ms"]["client_first_byte"].is_null());
  EXPECT_TRUE(j["timing_ms"]["hello_complete"].is_null());
  EXPECT_TRUE(j["timing_ms"]["upstream_connected"].is_null());
  EXPECT_TRUE(j["timing_ms"]["upstream_first_byte"].is_null());
  EXPECT_EQ(j["bytes"]["from_client"], 0);
  EXPECT_TRUE(j["close"]["first"].is_null());
  EXPECT_EQ(j["close"]["client"], "proxy");
  EXPECT_EQ(j["close"]["upstream"], "never");
  EXPECT_EQ(j["stop"]["phase"], "route");
  EXPECT_EQ(j["stop"]["reason"], "no_route");
  EXPECT_EQ(j["stop"]["by"], "proxy");
  EXPECT_FALSE(j["stop"].contains("errno"));
  EXPECT_EQ(j["outcome"], "failed");
  EXPECT_TRUE(j["route"].is_null());
  EXPECT_TRUE(j["upstream"].is_null());
  EXPECT_FALSE(j.contains("tls"));
  EXPECT_FALSE(j.contains("server_tls"));
  EXPECT_NE(j["hint"].get<std::string>().find("No route matched"), std::string::npos);
}

TEST(RecordJson, FullRecord) {
  access_record r;
  r.ts = std::chrono::system_clock::now();
  r.duration_us = 12'345;
  r.timing.client_first_byte = 100;
  r.timing.upstream_connected = 1'500;
  r.bytes = {10, 10, 20, 20};
  r.close = {stop_by::client, side_end::fin, side_end::fin};
  r.stop = {stop_phase::connect, stop_reason::upstream_refused, stop_by::upstream,
            errno_name(ECONNREFUSED)};
  r.ok = false;
  r.route = "app";
  r.upstream = upstream_value{"app", "backend:443", "10.0.0.1", 443, 40000};
  r.client_first = first_flight_obs{"tls", "TLS handshake ClientHello", 517};
  r.tls = tls_obs{};
  r.tls->sni = "app.example.com";
  r.server_tls = server_tls_obs{};
  r.server_tls->alert = alert_obs{tls::kAlertFatal, 112};
  const nlohmann::json j = r;
  EXPECT_DOUBLE_EQ(j["duration_ms"].get<double>(), 12.345);
  EXPECT_DOUBLE_EQ(j["timing_ms"]["client_first_byte"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(j["timing_ms"]["upstream_connected"].get<double>(), 1.5);
  EXPECT_TRUE(j["timing_ms"]["hello_complete"].is_null());
  EXPECT_EQ(j["stop"]["errno"], "ECONNREFUSED");
  EXPECT_EQ(j["close"]["first"], "client");
  EXPECT_EQ(j["route"], "app");
  EXPECT_EQ(j["upstream"]["local_port"], 40000);
  EXPECT_EQ(j["upstream"]["address"], "backend:443");
  EXPECT_EQ(j["tls"]["sni"], "app.example.com");
  EXPECT_EQ(j["client_first"]["bytes"], 517);
  EXPECT_EQ(j["server_tls"]["alert"]["description"], "unrecognized_name");
  // ts: RFC 3339 UTC with microseconds.
  const std::string ts = j["ts"];
  ASSERT_EQ(ts.size(), 27U) << ts;
  EXPECT_EQ(ts[10], 'T');
  EXPECT_EQ(ts[19], '.');
  EXPECT_EQ(ts.back(), 'Z');
}

TEST(RecordJson, UpstreamNotConnectedOmitsIpAndPorts) {
  access_record r;
  r.upstream = upstream_value{"default", "nohost.invalid:80", "", 0, 0};
  const nlohmann::json j = r;
  EXPECT_EQ(j["upstream"]["address"], "nohost.invalid:80");
  EXPECT_FALSE(j["upstream"].contains("ip"));
  EXPECT_FALSE(j["upstream"].contains("local_port"));
}

// reference_rfc3339: the timestamp as gmtime_r + strftime + snprintf write it (what
// format_rfc3339_us did before it wrote the digits itself); instants from 1970 on.
std::string reference_rfc3339(std::int64_t us) {
  const std::time_t secs = static_cast<std::time_t>(us / 1'000'000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  const auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%.*s.%06ldZ", static_cast<int>(n), buf,
                static_cast<long>(us % 1'000'000));
  return out;
}

std::chrono::system_clock::time_point at_us(std::int64_t us) {
  return std::chrono::system_clock::time_point(std::chrono::microseconds(us));
}

TEST(Rfc3339, MatchesStrftimeFrom1970To2100) {
  // A step that is no divisor of a day or a year walks every month, day and time of day.
  constexpr std::int64_t kStep = 37LL * 3600 * 1'000'000 + 61'000'123;
  constexpr std::int64_t kEnd = 4'102'444'800LL * 1'000'000;  // 2100-01-01
  int checked = 0;
  for (std::int64_t us = 0; us < kEnd; us += kStep) {
    ASSERT_EQ(format_rfc3339_us(at_us(us)), reference_rfc3339(us)) << us;
    ++checked;
  }
  EXPECT_GT(checked, 30'000);
}

TEST(Rfc3339, Edges) {
  EXPECT_EQ(format_rfc3339_us(at_us(0)), "1970-01-01T00:00:00.000000Z");
  EXPECT_EQ(format_rfc3339_us(at_us(951'868'799'999'999)), "2000-02-29T23:59:59.999999Z");
  EXPECT_EQ(format_rfc3339_us(at_us(4'107'542'400'000'000)), "2100-03-01T00:00:00.000000Z");
  // (system_clock counts nanoseconds in an int64 here: its range ends in 2262.)
  EXPECT_EQ(format_rfc3339_us(at_us(7'258'118'400'000'000)), "2200-01-01T00:00:00.000000Z");
  // Before 1970 the fraction still counts up from the second before (floor, not truncation).
  EXPECT_EQ(format_rfc3339_us(at_us(-1)), "1969-12-31T23:59:59.999999Z");
}

TEST(ErrnoName, Symbolic) {
  EXPECT_EQ(errno_name(ECONNREFUSED), "ECONNREFUSED");
  EXPECT_EQ(errno_name(EHOSTUNREACH), "EHOSTUNREACH");
  EXPECT_EQ(errno_name(ECONNRESET), "ECONNRESET");
}

TEST(Hint, AddsWhatTheRecordShows) {
  access_record r;
  r.stop = {stop_phase::first_reply, stop_reason::upstream_tls_alert, stop_by::upstream, ""};
  r.tls = tls_obs{};
  r.tls->sni = "app.example.com";
  r.server_tls = server_tls_obs{};
  r.server_tls->alert = alert_obs{tls::kAlertFatal, 40};
  const std::string h = hint_for(r);
  EXPECT_EQ(h.find(std::string(default_hint(r.stop.phase, r.stop.reason))), 0U);
  EXPECT_NE(h.find("handshake_failure"), std::string::npos);
  EXPECT_NE(h.find("app.example.com"), std::string::npos);

  r.stop = {stop_phase::first_reply, stop_reason::upstream_error_reply, stop_by::upstream, ""};
  r.upstream_first = first_flight_obs{"postgres", "ErrorResponse FATAL 28000\nline", 80};
  const std::string h2 = hint_for(r);
  EXPECT_NE(h2.find("ErrorResponse FATAL 28000"), std::string::npos);
  EXPECT_EQ(h2.find('\n'), std::string::npos);
}

}  // namespace
}  // namespace linesman::proxy
