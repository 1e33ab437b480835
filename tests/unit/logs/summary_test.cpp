// Tests of tools/logs/reader and tools/logs/summary: robust reading (bad lines with line numbers,
// interim records apart), percentiles, the funnel, stop-reason ranking, and the rendered forms.
#include "tools/logs/summary.hpp"

#include "tests/unit/logs/log_test_util.hpp"
#include "tests/unit/test_data.hpp"
#include "tools/logs/reader.hpp"

#include <algorithm>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>

#include <gtest/gtest.h>

namespace linesman::tools {
namespace {

using test::make_record;
using test::read_records;
using test::set_stop;

using linesman::test::kLogsData;

log_contents read_fixture(const std::string& name) {
  log_contents out;
  read_log_file(kLogsData + name, out);
  return out;
}

const group_summary* find_group(const summary& s, const std::string& listener,
                                const std::optional<std::string>& sni) {
  for (const auto& g : s.groups) {
    if (g.listener == listener && g.sni == sni) {
      return &g;
    }
  }
  return nullptr;
}

std::array<std::size_t, kFunnelStages> funnel(std::size_t a, std::size_t i, std::size_t r,
                                              std::size_t c, std::size_t f, std::size_t s) {
  return {a, i, r, c, f, s};
}

// --- percentiles -------------------------------------------------------------------------------

TEST(SummaryPercentiles, EmptySetHasNoValues) {
  const auto p = compute_percentiles({});
  EXPECT_EQ(p.n, 0u);
}

TEST(SummaryPercentiles, SingleValueIsEveryPercentile) {
  const auto p = compute_percentiles({7.5});
  EXPECT_EQ(p.n, 1u);
  EXPECT_EQ(p.p50, 7.5);
  EXPECT_EQ(p.p90, 7.5);
  EXPECT_EQ(p.p99, 7.5);
  EXPECT_EQ(p.max, 7.5);
}

TEST(SummaryPercentiles, NearestRankOnOneToTen) {
  const auto p = compute_percentiles({10, 9, 8, 7, 6, 5, 4, 3, 2, 1});
  EXPECT_EQ(p.n, 10u);
  EXPECT_EQ(p.p50, 5);   // rank ceil(0.5 * 10) = 5
  EXPECT_EQ(p.p90, 9);   // rank ceil(0.9 * 10) = 9, not 10 (no float round-up)
  EXPECT_EQ(p.p99, 10);  // rank ceil(9.9) = 10
  EXPECT_EQ(p.max, 10);
}

TEST(SummaryPercentiles, NearestRankOnThreeValues) {
  const auto p = compute_percentiles({3, 1, 2});
  EXPECT_EQ(p.p50, 2);  // rank ceil(1.5) = 2
  EXPECT_EQ(p.p90, 3);  // rank ceil(2.7) = 3
  EXPECT_EQ(p.p99, 3);
}

TEST(SummaryPercentiles, OneToHundredShuffled) {
  std::vector<double> v(100);
  std::iota(v.begin(), v.end(), 1.0);
  std::mt19937 rng(42);
  std::shuffle(v.begin(), v.end(), rng);
  const auto p = compute_percentiles(v);
  EXPECT_EQ(p.p50, 50);
  EXPECT_EQ(p.p90, 90);
  EXPECT_EQ(p.p99, 99);
  EXPECT_EQ(p.max, 100);
}

TEST(SummaryPercentiles, NullTimingsAreLeftOut) {
  std::vector<nlohmann::json> recs;
  const double connected[] = {1.0, 2.0, -1, 4.0};  // -1: null
  for (int i = 0; i < 4; ++i) {
    auto r = make_record("c" + std::to_string(i), i * 10.0);
    if (connected[i] < 0) {
      set_stop(r, "connect", "upstream_refused");
    } else {
      r["timing_ms"]["upstream_connected"] = connected[i];
      r["timing_ms"]["upstream_first_byte"] = connected[i] + 10.0 * (i + 1);
    }
    recs.push_back(r);
  }
  // One more that connected but never got a reply: counts for connect, not for first reply.
  auto silent = make_record("c4", 50);
  set_stop(silent, "first_reply", "upstream_silent");
  silent["timing_ms"]["upstream_connected"] = 3.0;
  recs.push_back(silent);

  const auto s = summarize(read_records(recs));
  EXPECT_EQ(s.total.connect_ms.n, 4u);  // 1, 2, 3, 4
  EXPECT_EQ(s.total.connect_ms.p50, 2.0);
  EXPECT_EQ(s.total.connect_ms.max, 4.0);
  EXPECT_EQ(s.total.first_reply_ms.n, 3u);  // 10, 20, 40 (since connect)
  EXPECT_EQ(s.total.first_reply_ms.p50, 20.0);
  EXPECT_EQ(s.total.first_reply_ms.max, 40.0);
}

// --- funnel and stops --------------------------------------------------------------------------

TEST(SummaryFunnel, StagesFollowTheStopAndTheTimings) {
  auto silent_client = make_record("c1");
  set_stop(silent_client, "inspect", "client_silent");
  silent_client["timing_ms"]["client_first_byte"] = nullptr;
  silent_client["timing_ms"]["hello_complete"] = nullptr;
  silent_client["bytes"]["from_client"] = 0;
  silent_client["bytes"]["to_upstream"] = 0;
  auto incomplete = make_record("c2");
  set_stop(incomplete, "inspect", "hello_incomplete");
  auto no_route = make_record("c3");
  set_stop(no_route, "route", "no_route");
  auto refused = make_record("c4");
  set_stop(refused, "connect", "upstream_refused");
  auto closed = make_record("c5");
  set_stop(closed, "first_reply", "upstream_closed_silently");
  auto alert = make_record("c6");
  set_stop(alert, "first_reply", "upstream_tls_alert");
  alert["timing_ms"]["upstream_first_byte"] = 1.5;
  alert["bytes"]["from_upstream"] = 7;
  auto done = make_record("c7");

  const auto logs =
      read_records({silent_client, incomplete, no_route, refused, closed, alert, done});
  ASSERT_EQ(logs.records.size(), 7u);
  EXPECT_EQ(furthest_stage(logs.records[0]), funnel_stage::accepted);
  EXPECT_EQ(furthest_stage(logs.records[1]), funnel_stage::inspected);  // sent bytes
  EXPECT_EQ(furthest_stage(logs.records[2]), funnel_stage::inspected);
  EXPECT_EQ(furthest_stage(logs.records[3]), funnel_stage::routed);
  EXPECT_EQ(furthest_stage(logs.records[4]), funnel_stage::connected);
  EXPECT_EQ(furthest_stage(logs.records[5]), funnel_stage::first_reply);
  EXPECT_EQ(furthest_stage(logs.records[6]), funnel_stage::stream);

  const auto s = summarize(logs);
  EXPECT_EQ(s.total.reached, funnel(7, 6, 4, 3, 2, 1));
  const std::vector<std::pair<std::string, std::size_t>> stopped = {
      {"inspect", 2}, {"route", 1}, {"connect", 1}, {"first_reply", 2}, {"stream", 1}};
  EXPECT_EQ(s.total.stopped, stopped);
}

TEST(SummaryFunnel, UnknownPhaseIsKeptAndListedAfterTheKnownOnes) {
  // A newer proxy may add phases or reasons (the contract allows adding): keep, do not reject.
  auto r = make_record("c1");
  auto text = r.dump();
  auto logs = read_records({r});
  std::istringstream in(R"({"ts":"2026-11-26T12:00:00Z","id":"x","listener":"l",)"
                        R"("client":{"ip":"127.0.0.1","port":1},"duration_ms":1,)"
                        R"("timing_ms":{},"stop":{"phase":"proxy_header","reason":"untrusted"}})");
  read_log(in, "new.jsonl", logs);
  ASSERT_EQ(logs.records.size(), 2u);
  const auto s = summarize(logs);
  ASSERT_EQ(s.total.stopped.size(), 6u);
  EXPECT_EQ(s.total.stopped.back(), (std::pair<std::string, std::size_t>{"proxy_header", 1}));
  EXPECT_EQ(furthest_stage(logs.records[1]), funnel_stage::accepted);
}

TEST(SummaryGroups, ByListenerAndSniWithNullSniAsNoSni) {
  auto a1 = make_record("c1", 0, "websecure");
  auto a2 = make_record("c2", 1, "websecure");
  auto b1 = make_record("c3", 2, "websecure");
  b1["tls"]["sni"] = "api.example.com";
  auto n1 = make_record("c4", 3, "websecure");
  n1["tls"]["sni"] = nullptr;
  auto n2 = make_record("c5", 4, "websecure");  // not TLS at all: no SNI either
  n2.erase("tls");
  n2["client_first"] = {{"protocol", "http1"}, {"summary", "GET / HTTP/1.1"}, {"bytes", 78}};
  auto p1 = make_record("c6", 5, "postgres");
  p1.erase("tls");

  const auto s = summarize(read_records({a1, a2, b1, n1, n2, p1}));
  ASSERT_EQ(s.groups.size(), 4u);
  // Listener ascending, then most connections first.
  EXPECT_EQ(s.groups[0].listener, "postgres");
  EXPECT_EQ(s.groups[1].sni, "app.example.com");
  EXPECT_EQ(s.groups[1].connections, 2u);
  ASSERT_NE(find_group(s, "websecure", std::nullopt), nullptr);
  EXPECT_EQ(find_group(s, "websecure", std::nullopt)->connections, 2u);
  EXPECT_EQ(find_group(s, "websecure", "api.example.com")->connections, 1u);
  EXPECT_EQ(sni_label(std::nullopt), "(no SNI)");
  EXPECT_NE(render_text(s).find("(no SNI)"), std::string::npos);
  const auto j = to_json(s);
  bool null_sni = false;
  for (const auto& g : j["groups"]) {
    null_sni = null_sni || (g["listener"] == "websecure" && g["sni"].is_null());
  }
  EXPECT_TRUE(null_sni) << "--json keeps a null SNI null";
}

TEST(SummaryReasons, RankedByCountThenPhaseWithFirstExample) {
  std::vector<nlohmann::json> recs;
  auto add = [&](const std::string& id, const std::string& phase, const std::string& reason) {
    auto r = make_record(id, static_cast<double>(recs.size()));
    set_stop(r, phase, reason, "hint of " + id);
    recs.push_back(r);
  };
  add("s1", "first_reply", "upstream_tls_alert");
  add("r1", "connect", "upstream_refused");
  add("s2", "first_reply", "upstream_tls_alert");
  add("c1", "stream", "completed");
  add("r2", "connect", "upstream_refused");
  add("s3", "first_reply", "upstream_tls_alert");
  add("r3", "connect", "upstream_refused");
  add("i1", "inspect", "client_silent");

  const auto s = summarize(read_records(recs));
  const auto& rs = s.total.reasons;
  ASSERT_EQ(rs.size(), 4u);
  // 3 and 3: the earlier phase (connect) first; then 1 and 1: inspect before stream.
  EXPECT_EQ(rs[0].reason, "upstream_refused");
  EXPECT_EQ(rs[0].count, 3u);
  EXPECT_DOUBLE_EQ(rs[0].share, 3.0 / 8.0);
  EXPECT_EQ(rs[0].example_id, "r1");
  EXPECT_EQ(rs[0].example_hint, "hint of r1");
  EXPECT_EQ(rs[0].example_at, "test.jsonl:2");
  EXPECT_EQ(rs[1].reason, "upstream_tls_alert");
  EXPECT_EQ(rs[1].example_id, "s1");
  EXPECT_EQ(rs[2].reason, "client_silent");
  EXPECT_EQ(rs[3].reason, "completed");
  EXPECT_DOUBLE_EQ(rs[3].share, 1.0 / 8.0);
}

// --- reading -----------------------------------------------------------------------------------

TEST(LogReader, BadLinesAreReportedWithLineNumbersAndSkipped) {
  const auto logs = read_fixture("bad_lines.jsonl");
  ASSERT_EQ(logs.records.size(), 3u);
  EXPECT_EQ(logs.records[0].line, 1u);
  EXPECT_EQ(logs.records[1].line, 5u);
  EXPECT_EQ(logs.records[2].line, 10u);
  EXPECT_EQ(logs.blank_lines, 1u);
  std::vector<std::size_t> lines;
  for (const auto& b : logs.bad_lines) {
    lines.push_back(b.line);
    EXPECT_EQ(b.file, kLogsData + "bad_lines.jsonl");
  }
  EXPECT_EQ(lines, (std::vector<std::size_t>{2, 4, 6, 7, 8, 9}));
  auto what = [&](std::size_t i) { return logs.bad_lines.at(i).what; };
  EXPECT_NE(what(0).find("not JSON"), std::string::npos) << what(0);
  EXPECT_NE(what(1).find("stop"), std::string::npos) << what(1);
  EXPECT_NE(what(2).find("not a JSON object"), std::string::npos) << what(2);
  EXPECT_NE(what(3).find("ts"), std::string::npos) << what(3);
  EXPECT_NE(what(4).find("timing_ms.upstream_connected"), std::string::npos) << what(4);
  EXPECT_NE(what(5).find("not JSON"), std::string::npos) << what(5);
  EXPECT_EQ(format(logs.bad_lines[0]).rfind(kLogsData + "bad_lines.jsonl:2: not JSON", 0), 0u)
      << format(logs.bad_lines[0]);

  const auto s = summarize(logs);
  EXPECT_EQ(s.records, 3u);
  EXPECT_EQ(s.bad_lines, 6u);
}

TEST(LogReader, EveryTruncationOfARecordIsABadLineNotACrash) {
  // What a reader sees when the proxy is killed mid-write: each proper prefix of a record.
  std::ifstream in(kLogsData + "entry.jsonl");
  std::string line;
  ASSERT_TRUE(std::getline(in, line));
  std::string error;
  ASSERT_TRUE(parse_record(line, error)) << error;
  for (std::size_t n = 0; n < line.size(); ++n) {
    error.clear();
    EXPECT_FALSE(parse_record(std::string_view(line).substr(0, n), error)) << n;
    EXPECT_FALSE(error.empty()) << n;
  }
  // And bytes that are no text at all.
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string junk(static_cast<std::size_t>(rng() % 300), '\0');
    for (auto& c : junk) {
      c = static_cast<char>(rng() % 256);
    }
    std::string err;
    EXPECT_FALSE(parse_record(junk, err));
  }
}

TEST(LogReader, ReportBadLinesIsBounded) {
  std::vector<bad_line> bad;
  for (std::size_t i = 1; i <= 25; ++i) {
    bad.push_back(bad_line{"x.jsonl", i, "not JSON"});
  }
  std::ostringstream out;
  report_bad_lines("linesman summary", bad, out, 20);
  const auto text = out.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 21);
  EXPECT_NE(text.find("linesman summary: skipped x.jsonl:20: not JSON"), std::string::npos);
  EXPECT_EQ(text.find("x.jsonl:21:"), std::string::npos);
  EXPECT_NE(text.find("5 more"), std::string::npos);
}

TEST(LogReader, InterimRecordsAreKeptApart) {
  auto interim = make_record("c1");
  set_stop(interim, "first_reply", "upstream_silent");
  interim["state"] = "open";
  interim["close"] = {{"first", nullptr}, {"client", "open"}, {"upstream", "open"}};
  interim["duration_ms"] = 5000.0;
  auto final_rec = interim;
  final_rec.erase("state");
  final_rec["duration_ms"] = 30000.0;
  final_rec["close"] = {{"first", "upstream"}, {"client", "proxy"}, {"upstream", "fin"}};
  auto hang = make_record("c2", 100);
  set_stop(hang, "first_reply", "upstream_silent");
  hang["state"] = "open";
  hang["duration_ms"] = 12000.0;

  const auto logs = read_records({interim, final_rec, hang});
  EXPECT_EQ(logs.records.size(), 1u);
  EXPECT_EQ(logs.open_records.size(), 2u);
  const auto s = summarize(logs);
  EXPECT_EQ(s.records, 1u) << "a connection with interim records is counted once";
  EXPECT_EQ(s.total.connections, 1u);
  EXPECT_EQ(s.interim_records, 2u);
  ASSERT_EQ(s.open.size(), 1u);
  EXPECT_EQ(s.open[0].id, "c2");
  EXPECT_EQ(s.open[0].phase, "first_reply");
  EXPECT_EQ(s.open[0].age_ms, 12000.0);
  EXPECT_NE(render_text(s).find("Still open"), std::string::npos);
}

TEST(LogReader, TimestampsParseWithFractionsAndOffsets) {
  EXPECT_EQ(parse_rfc3339_us("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(parse_rfc3339_us("1970-01-01T00:00:01.5Z"), 1500000);
  EXPECT_EQ(parse_rfc3339_us("2026-11-26T12:00:00.000001Z"), 1795694400000001LL);
  EXPECT_EQ(parse_rfc3339_us("2026-11-26T13:00:00.000001+01:00"), 1795694400000001LL);
  EXPECT_EQ(parse_rfc3339_us("2000-02-29T00:00:00Z"), 951782400000000LL);
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26 12:00:00"));  // no zone
  EXPECT_FALSE(parse_rfc3339_us("2026-13-26T12:00:00Z"));
  EXPECT_FALSE(parse_rfc3339_us("2026-11-26T12:00:00.Z"));
  EXPECT_FALSE(parse_rfc3339_us("yesterday"));
  EXPECT_FALSE(parse_rfc3339_us(""));
}

TEST(LogReader, AddressesAreNormalized) {
  EXPECT_EQ(normalize_ip("::ffff:127.0.0.1"), "127.0.0.1");
  EXPECT_EQ(normalize_ip("[::1]"), "::1");
  EXPECT_EQ(normalize_ip("2001:DB8:0:0::1"), "2001:db8::1");
  EXPECT_EQ(normalize_ip("backend.local"), "backend.local");
  EXPECT_EQ(to_string(log_endpoint{"::1", 443}), "[::1]:443");
  EXPECT_EQ(to_string(log_endpoint{"10.0.0.1", 80}), "10.0.0.1:80");
}

TEST(LogReader, UnreadableFileThrowsNamingIt) {
  log_contents out;
  try {
    read_log_file(kLogsData + "does-not-exist.jsonl", out);
    FAIL() << "no exception";
  } catch (const log_open_error& e) {
    EXPECT_NE(std::string(e.what()).find("does-not-exist.jsonl"), std::string::npos);
  }
  EXPECT_THROW(read_log_file(kLogsData, out), log_open_error);  // a directory
}

// --- the fixture, hand-checked -------------------------------------------------------------------

TEST(SummaryFixture, EntryLogNumbers) {
  const auto logs = read_fixture("entry.jsonl");
  EXPECT_TRUE(logs.bad_lines.empty());
  const auto s = summarize(logs);
  EXPECT_EQ(s.records, 15u);
  EXPECT_EQ(s.interim_records, 2u);
  ASSERT_EQ(s.groups.size(), 4u);

  const auto* app = find_group(s, "websecure", "app.example.com");
  ASSERT_NE(app, nullptr);
  EXPECT_EQ(app->reached, funnel(9, 9, 9, 9, 6, 6));
  const auto* api = find_group(s, "websecure", "api.example.com");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->reached, funnel(2, 2, 2, 1, 1, 0));
  const auto* nosni = find_group(s, "websecure", std::nullopt);
  ASSERT_NE(nosni, nullptr);
  EXPECT_EQ(nosni->reached, funnel(1, 1, 0, 0, 0, 0));
  const auto* pg = find_group(s, "postgres", std::nullopt);
  ASSERT_NE(pg, nullptr);
  EXPECT_EQ(pg->reached, funnel(3, 2, 2, 2, 2, 0));
  EXPECT_EQ(s.total.reached, funnel(15, 14, 13, 12, 9, 6));

  std::vector<std::string> order;
  for (const auto& r : s.total.reasons) {
    order.push_back(r.phase + "/" + r.reason);
  }
  const std::vector<std::string> expected = {"stream/completed",
                                             "first_reply/upstream_closed_silently",
                                             "first_reply/upstream_error_reply",
                                             "inspect/client_silent",
                                             "route/no_route",
                                             "connect/upstream_refused",
                                             "first_reply/upstream_silent",
                                             "first_reply/upstream_tls_alert",
                                             "stream/client_closed"};
  EXPECT_EQ(order, expected);
  EXPECT_EQ(s.total.reasons[1].example_id, "c000006");

  // connect: .21 .31 .38 .39 .40 .41 .44 .47 .50 .50 .52 .61
  EXPECT_EQ(s.total.connect_ms.n, 12u);
  EXPECT_NEAR(s.total.connect_ms.p50, 0.41, 1e-9);
  EXPECT_NEAR(s.total.connect_ms.p90, 0.52, 1e-9);
  EXPECT_NEAR(s.total.connect_ms.p99, 0.61, 1e-9);
  // first reply after connect: .7 .7 1.1 1.5 1.7 1.9 2.0 2.3 12.5
  EXPECT_EQ(s.total.first_reply_ms.n, 9u);
  EXPECT_NEAR(s.total.first_reply_ms.p50, 1.7, 1e-9);
  EXPECT_NEAR(s.total.first_reply_ms.p90, 12.5, 1e-9);
  EXPECT_NEAR(s.total.first_reply_ms.max, 12.5, 1e-9);

  ASSERT_EQ(s.open.size(), 1u);
  EXPECT_EQ(s.open[0].id, "c000016");
}

TEST(SummaryRender, TextFitsOneHundredColumnsAndJsonCarriesTheSameNumbers) {
  auto logs = read_fixture("entry.jsonl");
  // A very long listener, SNI and id must be cut, not overflow.
  auto long_one = make_record(std::string(80, 'i'), 0, std::string(60, 'l'));
  long_one["tls"]["sni"] = std::string(200, 's') + ".example.com";
  set_stop(long_one, "first_reply", "upstream_closed_silently", std::string(300, 'h'));
  auto extra = read_records({long_one});
  logs.records.push_back(extra.records.at(0));
  const auto s = summarize(logs);
  const auto text = render_text(s);
  std::istringstream lines(text);
  std::string line;
  std::size_t n = 0;
  while (std::getline(lines, line)) {
    ++n;
    EXPECT_LE(line.size(), 100u) << "line " << n << ": " << line;
  }
  EXPECT_GT(n, 20u);
  EXPECT_NE(text.find("stream/completed"), std::string::npos);
  EXPECT_NE(text.find("nearest-rank"), std::string::npos);
  EXPECT_NE(text.find("upstream_connected -> upstream_first_byte"), std::string::npos);

  const auto j = to_json(s);
  EXPECT_EQ(j["records"], 16);
  EXPECT_EQ(j["total"]["funnel"]["accepted"], 16);
  EXPECT_EQ(j["total"]["funnel"]["stream"], 6);
  EXPECT_EQ(j["total"]["stop_reasons"][0]["reason"], "completed");
  EXPECT_EQ(j["total"]["stop_reasons"][0]["example_id"], "c000001");
  EXPECT_EQ(j["total"]["connect_ms"]["n"], 13);  // the fixture's 12 and the long one
  EXPECT_EQ(j["still_open"][0]["id"], "c000016");
  EXPECT_EQ(j["groups"].size(), 5u);
}

TEST(SummaryRender, EmptyInputSaysSo) {
  const auto s = summarize(log_contents{});
  EXPECT_NE(render_text(s).find("no final records"), std::string::npos);
  const auto j = to_json(s);
  EXPECT_TRUE(j["total"]["connect_ms"]["p50"].is_null());
}

// pq: a record whose hello carried (or not) a post-quantum key share, with its warnings.
nlohmann::json pq_record(const std::string& id, bool pq, bool failed,
                         std::vector<std::string> warnings = {}) {
  auto j = make_record(id);
  j["tls"]["pq_key_share"] = pq;
  j["tls"]["key_share_groups"] = pq ? std::vector<std::string>{"X25519MLKEM768", "x25519"}
                                    : std::vector<std::string>{"x25519"};
  if (failed) {
    set_stop(j, "first_reply", "upstream_closed_silently");
  }
  if (!warnings.empty()) {
    j["warnings"] = warnings;
  }
  return j;
}

TEST(SummaryPq, FailuresOnlyOnThePostQuantumSideAreCalledOut) {
  std::vector<nlohmann::json> recs = {
      pq_record("a", true, true, {"sni_after_first_segment"}),
      pq_record("b", true, false, {"sni_after_first_segment", "default_certificate"}),
      pq_record("c", true, false),
      pq_record("d", false, false),
      pq_record("e", false, false),
  };
  auto old = make_record("f");  // a log written before the field: left out of the split
  recs.push_back(old);
  const auto s = summarize(read_records(recs));
  EXPECT_EQ(s.pq.pq.connections, 3U);
  EXPECT_EQ(s.pq.pq.failed, 2U);  // one closed, one "ok" with a default certificate
  EXPECT_EQ(s.pq.classic.connections, 2U);
  EXPECT_EQ(s.pq.classic.failed, 0U);
  EXPECT_NE(s.pq.one_sided.find("only on connections with a post-quantum key share"),
            std::string::npos)
      << s.pq.one_sided;
  ASSERT_EQ(s.warnings.size(), 2U);
  EXPECT_EQ(s.warnings[0], (std::pair<std::string, std::size_t>{"sni_after_first_segment", 2}));
  EXPECT_EQ(s.warnings[1], (std::pair<std::string, std::size_t>{"default_certificate", 1}));
  const auto text = render_text(s);
  EXPECT_NE(text.find("Warnings"), std::string::npos) << text;
  EXPECT_NE(text.find("Post-quantum key share"), std::string::npos) << text;
  for (std::size_t at = 0, end = 0; at < text.size(); at = end + 1) {
    end = text.find('\n', at);
    end = end == std::string::npos ? text.size() : end;
    EXPECT_LE(end - at, 100U) << text.substr(at, end - at);
  }
  const auto j = to_json(s);
  EXPECT_EQ(j["pq_key_share"]["with"]["failed"], 2);
  EXPECT_EQ(j["warnings"]["default_certificate"], 1);
}

TEST(SummaryPq, FailuresOnBothSidesAreNotOneSided) {
  const auto s = summarize(read_records({pq_record("a", true, true), pq_record("b", false, true)}));
  EXPECT_TRUE(s.pq.one_sided.empty());
  const auto none = summarize(read_records({pq_record("a", true, true)}));
  EXPECT_TRUE(none.pq.one_sided.empty());  // nothing to compare with
  const auto classic =
      summarize(read_records({pq_record("a", true, false), pq_record("b", false, true)}));
  EXPECT_NE(classic.pq.one_sided.find("without a post-quantum"), std::string::npos);
}

}  // namespace
}  // namespace linesman::tools
