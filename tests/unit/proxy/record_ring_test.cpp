#include "proxy/record_ring.hpp"

#include "proxy/log_sink.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace linesman::proxy {
namespace {

using namespace std::chrono_literals;

const wall_clock::time_point kT0 = wall_clock::time_point(std::chrono::hours(490000));

// cid: the id of entry i, one length for every i (so every entry costs the same).
std::string cid(int i) {
  std::string id = "c-" + std::to_string(i);
  return id + std::string(8 - id.size(), '_');
}

ring_entry entry(int i, wall_clock::time_point ended, stop_phase p = stop_phase::stream,
                 stop_reason r = stop_reason::completed, std::string listener = "l",
                 std::size_t line_bytes = 100) {
  ring_entry e;
  e.id = cid(i);
  e.listener = std::move(listener);
  e.ended = ended;
  e.phase = p;
  e.reason = r;
  e.line = "{\"id\":\"" + e.id + "\"";
  e.line += std::string(line_bytes > e.line.size() + 1 ? line_bytes - e.line.size() - 1 : 0, ' ');
  e.line += "}";
  return e;
}

void push_one(record_ring& ring, ring_entry e) {
  std::vector<ring_entry> b;
  b.push_back(std::move(e));
  ring.push(std::move(b));
}

TEST(RecordRing, BoundedInCountKeepsTheNewest) {
  record_ring ring(10, 1 << 20);
  for (int i = 0; i < 25; ++i) {
    push_one(ring, entry(i, kT0 + std::chrono::seconds(i)));
  }
  const auto cov = ring.coverage();
  EXPECT_EQ(cov.held, 10U);
  EXPECT_EQ(cov.pushed, 25U);
  EXPECT_EQ(cov.evicted, 15U);
  ASSERT_TRUE(cov.newest_evicted);
  EXPECT_EQ(*cov.newest_evicted, kT0 + 14s);
  ASSERT_TRUE(cov.oldest_ended);
  EXPECT_EQ(*cov.oldest_ended, kT0 + 15s);
  records_query q;
  q.limit = 1000;
  const auto v = ring.query(q, kT0 + 30s);
  ASSERT_EQ(v.lines.size(), 10U);
  EXPECT_NE(v.lines.front().find("\"" + cid(24) + "\""), std::string::npos);  // newest first
  EXPECT_NE(v.lines.back().find("\"" + cid(15) + "\""), std::string::npos);
}

TEST(RecordRing, BoundedInBytesWhateverTheCount) {
  const std::size_t per = 1000;
  const std::size_t cost =
      record_ring::cost(entry(0, kT0, stop_phase::stream, stop_reason::completed, "l", per));
  record_ring ring(10000, cost * 5 + cost / 2);  // room for 5 entries, not 6
  for (int i = 0; i < 100; ++i) {
    push_one(ring, entry(i, kT0 + std::chrono::seconds(i), stop_phase::stream,
                         stop_reason::completed, "l", per));
    EXPECT_LE(ring.coverage().held_bytes, ring.max_bytes());
  }
  EXPECT_EQ(ring.coverage().held, 5U);
  EXPECT_EQ(ring.coverage().held_bytes, cost * 5);
  EXPECT_EQ(ring.coverage().evicted, 95U);
}

TEST(RecordRing, AnEntryLargerThanTheWholeBudgetIsNotKept) {
  record_ring ring(100, 2000);
  push_one(ring, entry(1, kT0));
  push_one(ring, entry(2, kT0 + 1s, stop_phase::stream, stop_reason::completed, "l", 5000));
  const auto cov = ring.coverage();
  EXPECT_EQ(cov.held, 1U);  // the small one stays: the huge one did not push it out
  EXPECT_EQ(cov.evicted, 1U);
  EXPECT_EQ(cov.pushed, 2U);
}

TEST(RecordRing, QueryFiltersAndLimit) {
  record_ring ring;
  std::vector<ring_entry> b;
  b.push_back(entry(1, kT0, stop_phase::connect, stop_reason::upstream_refused, "a"));
  b.push_back(entry(2, kT0 + 10s, stop_phase::connect, stop_reason::upstream_refused, "b"));
  b.push_back(
      entry(3, kT0 + 20s, stop_phase::first_reply, stop_reason::upstream_closed_silently, "a"));
  b.push_back(entry(4, kT0 + 30s, stop_phase::stream, stop_reason::completed, "a"));
  ring.push(std::move(b));
  const auto now = kT0 + 40s;
  records_query q;
  q.reason = stop_reason::upstream_refused;
  auto v = ring.query(q, now);
  EXPECT_EQ(v.matched, 2U);
  q.listener = "b";
  v = ring.query(q, now);
  ASSERT_EQ(v.lines.size(), 1U);
  EXPECT_NE(v.lines[0].find("\"" + cid(2) + "\""), std::string::npos);
  records_query recent;
  recent.since = 25s;  // ended at or after now - 25 s: c-3 (20 s ago) and c-4
  EXPECT_EQ(ring.query(recent, now).matched, 2U);
  recent.limit = 1;
  v = ring.query(recent, now);
  EXPECT_EQ(v.matched, 2U);
  ASSERT_EQ(v.lines.size(), 1U);
  EXPECT_NE(v.lines[0].find("\"" + cid(4) + "\""), std::string::npos);
  records_query by_id;
  by_id.id = cid(3);
  by_id.phase = stop_phase::first_reply;
  EXPECT_EQ(ring.query(by_id, now).matched, 1U);
}

TEST(RecordRing, FunnelCountsTheWindowAndSaysWhenItIsIncomplete) {
  record_ring ring(4, 1 << 20);
  // Six records a minute apart: the first two are evicted (the ring holds four).
  for (int i = 0; i < 6; ++i) {
    push_one(ring, entry(i, kT0 + std::chrono::minutes(i),
                         i % 2 == 0 ? stop_phase::connect : stop_phase::stream,
                         i % 2 == 0 ? stop_reason::upstream_refused : stop_reason::completed));
  }
  const auto now = kT0 + 5min + 30s;
  funnel_query q;
  q.window = 2min;  // records 4 and 5
  auto f = ring.funnel(q, now);
  EXPECT_EQ(f.total, 2U);
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.ended[static_cast<std::size_t>(stop_phase::connect)]
                   [static_cast<std::size_t>(stop_reason::upstream_refused)],
            1U);
  EXPECT_EQ(f.ended[static_cast<std::size_t>(stop_phase::stream)]
                   [static_cast<std::size_t>(stop_reason::completed)],
            1U);
  q.window = 15min;  // would reach record 0: the ring no longer holds 0 and 1
  f = ring.funnel(q, now);
  EXPECT_EQ(f.total, 4U);
  EXPECT_FALSE(f.complete);
  q.window = 4min;  // starts after record 1 (the newest evicted) ended: complete
  f = ring.funnel(q, now);
  EXPECT_EQ(f.total, 4U);
  EXPECT_TRUE(f.complete);
  q.listener = "other";
  EXPECT_EQ(ring.funnel(q, now).total, 0U);
}

query_params params(std::initializer_list<std::pair<const std::string, std::string>> kv) {
  return query_params(kv);
}

std::string error_of(const std::variant<records_query, std::string>& v) {
  return std::holds_alternative<std::string>(v) ? std::get<std::string>(v) : "";
}

TEST(RecordsQuery, AcceptsEveryFilter) {
  const auto v = parse_records_query(params({{"since", "90s"},
                                             {"phase", "first_reply"},
                                             {"stop_reason", "upstream_silent"},
                                             {"listener", "web"},
                                             {"id", "abc-1"},
                                             {"limit", "1000"}}));
  ASSERT_TRUE(std::holds_alternative<records_query>(v)) << error_of(v);
  const auto& q = std::get<records_query>(v);
  EXPECT_EQ(q.since, std::chrono::milliseconds(90000));
  EXPECT_EQ(q.phase, stop_phase::first_reply);
  EXPECT_EQ(q.reason, stop_reason::upstream_silent);
  EXPECT_EQ(q.listener, "web");
  EXPECT_EQ(q.id, "abc-1");
  EXPECT_EQ(q.limit, 1000U);
  EXPECT_EQ(std::get<records_query>(parse_records_query({})).limit, 100U);
}

TEST(RecordsQuery, RefusesBadValuesWithTheirName) {
  const std::vector<std::pair<query_params, std::string>> bad = {
      {params({{"limit", "-1"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", "0"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", "1001"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", "99999999"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", "99999999999999999999999"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", "10abc"}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", ""}}), "limit: a whole number from 1 to 1000"},
      {params({{"limit", " 5"}}), "limit: a whole number from 1 to 1000"},
      {params({{"since", "0s"}}), "since: '0s' must be above 0 and at most 24h"},
      {params({{"since", "25h"}}), "since: '25h' must be above 0 and at most 24h"},
      {params({{"since", "-5s"}}), "since: bad duration"},
      {params({{"since", "5"}}), "since: bad duration"},
      {params({{"phase", "route2"}}), "phase: use inspect, route, connect"},
      {params({{"stop_reason", "nope"}}), "stop_reason: not a stop reason"},
      {params({{"listener", std::string(257, 'a')}}), "listener: longer than 256 bytes"},
      {params({{"sni", "x"}}), "unknown query parameter 'sni'"},
      {params({{std::string(5000, 'k'), "x"}}), "unknown query parameter (use since"},
      {params({{"id", "a\x01"}}), "id: not valid UTF-8"},
      {params({{"id", "\xff\xfe"}}), "id: not valid UTF-8"},
  };
  for (const auto& [q, want] : bad) {
    const auto why = error_of(parse_records_query(q));
    EXPECT_EQ(why.rfind(want, 0), 0U) << "got '" << why << "', want '" << want << "...'";
  }
  query_params twice;
  twice.emplace("limit", "5");
  twice.emplace("limit", "6");
  EXPECT_EQ(error_of(parse_records_query(twice)), "limit: given more than once");
}

TEST(FunnelQuery, WindowAndListener) {
  auto v = parse_funnel_query(params({{"window", "15m"}, {"listener", "web"}}));
  ASSERT_TRUE(std::holds_alternative<funnel_query>(v));
  EXPECT_EQ(std::get<funnel_query>(v).window, std::chrono::minutes(15));
  EXPECT_EQ(std::get<funnel_query>(v).listener, "web");
  EXPECT_EQ(std::get<funnel_query>(parse_funnel_query({})).window, std::chrono::minutes(5));
  v = parse_funnel_query(params({{"window", "48h"}}));
  ASSERT_TRUE(std::holds_alternative<std::string>(v));
  EXPECT_EQ(std::get<std::string>(v).rfind("window:", 0), 0U);
  v = parse_funnel_query(params({{"limit", "5"}}));
  ASSERT_TRUE(std::holds_alternative<std::string>(v));
}

// The sink hands every final record to the ring, as the very bytes it wrote; interim records
// ("state": "open") stay out of it.
TEST(RecordRing, LogSinkPushesWhatItWrites) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("record_ring_test_" + std::to_string(::getpid()) + ".jsonl");
  record_ring ring;
  {
    log_sink sink(path.string(), log_sink::kDefaultCapacity, log_format::linesman, &ring);
    for (int i = 0; i < 3; ++i) {
      access_record r;
      r.id = "s-" + std::to_string(i);
      r.listener = "web";
      r.ts = wall_clock::now();
      r.duration_us = 1500;
      r.stop = {stop_phase::connect, stop_reason::upstream_refused, stop_by::upstream, ""};
      r.open_state = i == 1;
      sink.push(std::move(r));
    }
    sink.stop();
  }
  std::ifstream in(path);
  std::vector<std::string> written;
  for (std::string line; std::getline(in, line);) {
    if (nlohmann::json::parse(line).value("state", "") != "open") {
      written.push_back(line);
    }
  }
  std::filesystem::remove(path);
  records_query q;
  const auto v = ring.query(q, wall_clock::now());
  ASSERT_EQ(written.size(), 2U);
  ASSERT_EQ(v.lines.size(), 2U);
  EXPECT_EQ(v.lines[0], written[1]);  // newest first, byte for byte
  EXPECT_EQ(v.lines[1], written[0]);
  q.reason = stop_reason::upstream_refused;
  q.listener = "web";
  EXPECT_EQ(ring.query(q, wall_clock::now()).matched, 2U);
}

// Another format in the log: the ring still holds the linesman record (the page reads that).
TEST(RecordRing, OtherLogFormatsStillGiveTheRingLinesmanRecords) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("record_ring_ecs_" + std::to_string(::getpid()) + ".jsonl");
  record_ring ring;
  {
    log_sink sink(path.string(), log_sink::kDefaultCapacity, log_format::ecs, &ring);
    access_record r;
    r.id = "e-1";
    r.ts = wall_clock::now();
    sink.push(std::move(r));
    sink.stop();
  }
  std::filesystem::remove(path);
  const auto v = ring.query({}, wall_clock::now());
  ASSERT_EQ(v.lines.size(), 1U);
  const auto j = nlohmann::json::parse(v.lines[0]);
  EXPECT_EQ(j["id"], "e-1");
  EXPECT_TRUE(j.contains("stop"));
}

}  // namespace
}  // namespace linesman::proxy
