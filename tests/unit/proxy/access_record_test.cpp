#include "proxy/access_record.hpp"

#include "proxy/hint.hpp"

#include <cerrno>
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
