// Tests of tools/correlate: pairing by PROXY source, by time and SNI, window edges, each record
// used once, unpaired lists with their hints, durations, and the rendered forms.
#include "tools/logs/correlate.hpp"

#include "tests/unit/logs/log_test_util.hpp"
#include "tests/unit/test_data.hpp"
#include "tools/logs/reader.hpp"

#include <sstream>

#include <gtest/gtest.h>

namespace linesman::tools {
namespace {

using test::make_record;
using test::read_records;
using test::set_stop;

using linesman::test::kLogsData;
constexpr std::int64_t kSecond = 1000000;

// a_record: placement A, client -> linesman -> Traefik.
nlohmann::json a_record(const std::string& id, double at_ms, int client_port,
                        const std::optional<std::string>& sni = "app.example.com") {
  auto r = make_record(id, at_ms, "front");
  r["client"] = {{"ip", "203.0.113.7"}, {"port", client_port}};
  r["tls"]["sni"] = sni ? nlohmann::json(*sni) : nlohmann::json(nullptr);
  return r;
}

// b_record: placement B, Traefik -> linesman -> backend; `proxy_port` > 0 adds the PROXY header
// Traefik sends with the original client 203.0.113.7:proxy_port.
nlohmann::json b_record(const std::string& id, double at_ms, int proxy_port = 0,
                        const std::optional<std::string>& sni = "app.example.com") {
  auto r = make_record(id, at_ms, "back");
  r["client"] = {{"ip", "127.0.0.1"}, {"port", 40000 + (proxy_port % 1000)}};
  r["tls"]["sni"] = sni ? nlohmann::json(*sni) : nlohmann::json(nullptr);
  if (proxy_port > 0) {
    r["proxy_protocol"] = {{"version", 2},
                           {"source", {{"ip", "203.0.113.7"}, {"port", proxy_port}}},
                           {"destination", {{"ip", "127.0.0.1"}, {"port", 8443}}}};
  }
  return r;
}

struct pairing {
  std::string a;
  std::string b;
  pair_method how;
  bool operator==(const pairing&) const = default;
};

std::ostream& operator<<(std::ostream& os, const pairing& p) {
  return os << p.a << "<->" << p.b << " (" << to_string(p.how) << ")";
}

struct result {
  std::vector<pairing> pairs;
  std::vector<std::string> a_only;
  std::vector<std::string> b_only;
  correlation raw;
};

result run_logs(const log_contents& a, const log_contents& b, std::int64_t window_us = kSecond) {
  result r;
  r.raw = correlate(a.records, b.records, window_us);
  for (const auto& p : r.raw.pairs) {
    r.pairs.push_back(pairing{a.records[p.a].id, b.records[p.b].id, p.how});
  }
  for (const auto& u : r.raw.a_only) {
    r.a_only.push_back(a.records[u.index].id);
  }
  for (const auto& u : r.raw.b_only) {
    r.b_only.push_back(b.records[u.index].id);
  }
  return r;
}

result run(const std::vector<nlohmann::json>& a, const std::vector<nlohmann::json>& b,
           std::int64_t window_us = kSecond) {
  return run_logs(read_records(a, "a.jsonl"), read_records(b, "b.jsonl"), window_us);
}

using strings = std::vector<std::string>;
constexpr auto kExact = pair_method::proxy_source;
constexpr auto kTime = pair_method::time_sni;

TEST(Correlate, PairsExactlyByProxySourceWhateverTheTime) {
  // B records far outside any time window and in the other order: the PROXY source decides.
  auto b2 = b_record("b2", 60000, 40002);
  b2["proxy_protocol"]["source"]["ip"] = "::ffff:203.0.113.7";  // same address, v4-mapped
  const auto r = run({a_record("a1", 0, 40001), a_record("a2", 10, 40002)},
                     {b2, b_record("b1", 90000, 40001)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kExact}, {"a2", "b2", kExact}}));
  EXPECT_TRUE(r.raw.all_paired());
}

TEST(Correlate, ExactPairWinsOverANearerTimeCandidate) {
  // By time alone b1 would go to a2 (0.1 ms apart); its PROXY header says it is a1's.
  const auto r = run({a_record("a1", 0, 40001), a_record("a2", 0.1, 40002)},
                     {b_record("b1", 0.2, 40001), b_record("b2", 0.3)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kExact}, {"a2", "b2", kTime}}));
}

TEST(Correlate, ProxySourceThatMatchesNoAFallsBackToTimeAndSni) {
  const auto r = run({a_record("a1", 0, 40001)}, {b_record("b1", 1.0, 49999)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kTime}}));
}

TEST(Correlate, TimeAndSniMustBothMatch) {
  const auto r =
      run({a_record("a1", 0, 40001, "app.example.com"), a_record("a2", 0, 40002, std::nullopt),
           a_record("a3", 0, 40003, "api.example.com")},
          {b_record("b1", 1, 0, "APP.example.com"),  // SNI compares case-insensitively
           b_record("b2", 1, 0, std::nullopt),       // null pairs with null only
           b_record("b3", 1, 0, "other.example.com")});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kTime}, {"a2", "b2", kTime}}));
  EXPECT_EQ(r.a_only, strings{"a3"});
  EXPECT_EQ(r.b_only, strings{"b3"});
}

TEST(Correlate, NoTlsOnBothSidesCountsAsNoSni) {
  auto a = a_record("a1", 0, 40001);
  a.erase("tls");
  auto b = b_record("b1", 1);
  b.erase("tls");
  const auto r = run({a}, {b});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kTime}}));
}

TEST(Correlate, WindowEdgesAreInclusive) {
  // A accepted at 1000 ms and lasted 20 ms: B may start in [1000, 1020 + window].
  auto a = [] {
    auto r = a_record("a1", 1000, 40001);
    r["duration_ms"] = 20.0;
    return r;
  };
  auto paired = [&](double b_at, std::int64_t window_us) {
    return run({a()}, {b_record("b1", b_at)}, window_us).pairs.size() == 1;
  };
  EXPECT_TRUE(paired(1000.0, kSecond)) << "B at A's accept time";
  EXPECT_FALSE(paired(999.999, kSecond)) << "B 1 us before A";
  EXPECT_TRUE(paired(2020.0, kSecond)) << "B at A's end + window";
  EXPECT_FALSE(paired(2020.001, kSecond)) << "B 1 us after A's end + window";
  EXPECT_TRUE(paired(1020.0, 0)) << "window 0: B at A's end";
  EXPECT_FALSE(paired(1020.001, 0));
  EXPECT_TRUE(paired(1520.0, 500000)) << "--window 500ms";
  EXPECT_FALSE(paired(1520.001, 500000));
}

TEST(Correlate, EachRecordIsUsedOnceNearestFirst) {
  // One A, three B in its window: the nearest B pairs, the others are B only.
  auto r =
      run({a_record("a1", 0, 40001)}, {b_record("b1", 5), b_record("b2", 1), b_record("b3", 9)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b2", kTime}}));
  EXPECT_EQ(r.b_only, (strings{"b1", "b3"}));

  // Three A, one B: the A that started nearest before it.
  r = run({a_record("a1", 0, 40001), a_record("a2", 3, 40002), a_record("a3", 4, 40003)},
          {b_record("b1", 3.5)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a2", "b1", kTime}}));
  EXPECT_EQ(r.a_only, (strings{"a1", "a3"}));

  // Two back-to-back connections: each B goes to its own A.
  r = run({a_record("a1", 0, 40001), a_record("a2", 1, 40002)},
          {b_record("b1", 0.3), b_record("b2", 1.3)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kTime}, {"a2", "b2", kTime}}));

  // Two B with the same PROXY source (a reused client port): one pairs exactly, the
  // other is left for time+SNI, never used twice.
  r = run({a_record("a1", 0, 40001)}, {b_record("b1", 1, 40001), b_record("b2", 2, 40001)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a1", "b1", kExact}}));
  EXPECT_EQ(r.b_only, strings{"b2"});
}

TEST(Correlate, UnpairedListsCarryHints) {
  auto dialed_nothing = a_record("a1", 0, 40001);
  set_stop(dialed_nothing, "first_reply", "upstream_closed_silently");
  dialed_nothing["timing_ms"]["upstream_connected"] = 0.4;
  auto refused = a_record("a2", 10, 40002);
  set_stop(refused, "connect", "upstream_refused", "Nothing listens on the upstream address.");
  auto health = b_record("b1", 5000, 0, std::nullopt);
  auto stray = b_record("b2", 6000, 45555);

  const auto r = run({dialed_nothing, refused}, {health, stray});
  EXPECT_TRUE(r.pairs.empty());
  EXPECT_FALSE(r.raw.all_paired());
  ASSERT_EQ(r.a_only, (strings{"a1", "a2"}));
  EXPECT_EQ(r.raw.a_only[0].hint, std::string(kNeverDialedHint));
  EXPECT_NE(r.raw.a_only[0].hint.find("server address has a port"), std::string::npos);
  EXPECT_NE(r.raw.a_only[1].hint.find("never reached Traefik"), std::string::npos);
  EXPECT_NE(r.raw.a_only[1].hint.find("connect/upstream_refused"), std::string::npos);
  EXPECT_NE(r.raw.a_only[1].hint.find("Nothing listens"), std::string::npos);
  ASSERT_EQ(r.b_only, (strings{"b1", "b2"}));
  EXPECT_NE(r.raw.b_only[0].hint.find("no record in A"), std::string::npos);
  EXPECT_NE(r.raw.b_only[1].hint.find("203.0.113.7:45555"), std::string::npos);
}

TEST(Correlate, AnANeverConnectedTakesNoBRecord) {
  // a1 was refused by Traefik's port; b1 (same SNI, in a1's window) belongs to a2.
  auto refused = a_record("a1", 0, 40001);
  set_stop(refused, "connect", "upstream_refused");
  const auto r =
      run({refused, a_record("a2", 0.5, 40002)}, {b_record("b1", 0.6), b_record("b2", 0.55)});
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a2", "b2", kTime}}));
  EXPECT_EQ(r.a_only, strings{"a1"});
  EXPECT_EQ(r.b_only, strings{"b1"});
}

TEST(Correlate, EmptySidesAreAllUnpaired) {
  auto r = run({}, {b_record("b1", 0)});
  EXPECT_EQ(r.b_only, strings{"b1"});
  r = run({a_record("a1", 0, 1)}, {});
  EXPECT_EQ(r.a_only, strings{"a1"});
  r = run(std::vector<nlohmann::json>{}, std::vector<nlohmann::json>{});
  EXPECT_TRUE(r.raw.all_paired());
}

TEST(Correlate, FixtureServiceAddressWithoutPort) {
  log_contents a;
  log_contents b;
  read_log_file(kLogsData + "correlate_a.jsonl", a);
  read_log_file(kLogsData + "correlate_b.jsonl", b);
  ASSERT_TRUE(a.bad_lines.empty());
  ASSERT_TRUE(b.bad_lines.empty());
  auto r = run_logs(a, b);
  EXPECT_EQ(r.pairs, (std::vector<pairing>{{"a-01", "b-01", kExact},
                                           {"a-02", "b-02", kExact},
                                           {"a-03", "b-03", kTime},
                                           {"a-04", "b-04", kTime},
                                           {"a-05", "b-05", kTime}}));
  EXPECT_EQ(r.a_only, (strings{"a-06", "a-07"}));
  EXPECT_EQ(r.raw.a_only[0].hint, std::string(kNeverDialedHint));
  EXPECT_EQ(r.b_only, (strings{"b-06", "b-07"}));
  EXPECT_EQ(r.raw.b_only[0].hint.find("wider --window"), std::string::npos);
  EXPECT_NE(r.raw.b_only[1].hint.find("a-06 with the same SNI ended 1000.9 ms before"),
            std::string::npos)
      << r.raw.b_only[1].hint;
  EXPECT_NEAR(r.raw.pairs[2].delay_ms, 0.3, 1e-6);

  // b-07 started 1000.9 ms after a-06 ended: a 2 s window pairs them.
  r = run_logs(a, b, 2 * kSecond);
  EXPECT_EQ(r.pairs.back(), (pairing{"a-06", "b-07", kTime}));
  EXPECT_EQ(r.b_only, strings{"b-06"});
}

TEST(Correlate, DurationsParse) {
  EXPECT_EQ(parse_duration_us("1s"), kSecond);
  EXPECT_EQ(parse_duration_us("500ms"), 500000);
  EXPECT_EQ(parse_duration_us("1.5s"), 1500000);
  EXPECT_EQ(parse_duration_us("250us"), 250);
  EXPECT_EQ(parse_duration_us("2m"), 120 * kSecond);
  EXPECT_EQ(parse_duration_us("0"), 0);
  EXPECT_EQ(parse_duration_us("0ms"), 0);
  EXPECT_FALSE(parse_duration_us("1"));  // a unit is required: 1 what?
  EXPECT_FALSE(parse_duration_us("-1s"));
  EXPECT_FALSE(parse_duration_us("s"));
  EXPECT_FALSE(parse_duration_us("1h"));
  EXPECT_FALSE(parse_duration_us("1.2.3s"));
  EXPECT_FALSE(parse_duration_us(""));
}

TEST(Correlate, RenderedFormsCarryPairsAndHints) {
  log_contents a;
  log_contents b;
  read_log_file(kLogsData + "correlate_a.jsonl", a);
  read_log_file(kLogsData + "correlate_b.jsonl", b);
  const auto c = correlate(a.records, b.records, kSecond);
  const correlate_input in{"correlate_a.jsonl", "correlate_b.jsonl", &a.records, &b.records,
                           kSecond};
  const auto text = render_text(in, c);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    EXPECT_LE(line.size(), 100u) << line;
  }
  EXPECT_NE(text.find("PROXY source 127.0.0.1:52001"), std::string::npos) << text;
  EXPECT_NE(text.find("Traefik never dialed the backend"), std::string::npos);
  EXPECT_NE(text.find("A only (reached A, nothing in B): 2"), std::string::npos);

  const auto j = to_json(in, c);
  EXPECT_EQ(j["pairs"].size(), 5u);
  EXPECT_EQ(j["pairs"][0]["how"], "proxy_source");
  EXPECT_EQ(j["pairs"][0]["key"], "127.0.0.1:52001");
  EXPECT_EQ(j["pairs"][2]["how"], "time_sni");
  EXPECT_EQ(j["a_only"][0]["id"], "a-06");
  EXPECT_EQ(j["a_only"][0]["hint"], std::string(kNeverDialedHint));
  EXPECT_EQ(j["b_only"][1]["at"], kLogsData + "correlate_b.jsonl:7");
  EXPECT_EQ(j["window_ms"], 1000.0);
  EXPECT_FALSE(j["all_paired"]);
}

}  // namespace
}  // namespace linesman::tools
