// record_ring: the recent final records kept in memory for the admin page (docs/live-view.md),
// and the validated queries the admin API answers from it (/api/records, /api/funnel).
//
// Bounds: at most max_records entries AND at most max_bytes of record text plus bookkeeping;
// the oldest entries go first. It exists only when --admin is on (the server owns it, every log
// sink pushes into it from its writer thread, the admin thread reads it). One mutex: a push is a
// batch of a writer's round, a read copies out what it matched.
//
// Coverage: what was evicted is remembered as a count and as the latest end time among the
// evicted records, so a window that starts after that instant is known to be complete.
#pragma once

#include "proxy/access_record.hpp"
#include "proxy/live.hpp"
#include "proxy/stop.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace linesman::proxy {

using wall_clock = std::chrono::system_clock;

// ring_entry: one final record as the ring keeps it: the linesman JSON line (no newline; the
// same bytes the log got when the sink's format is linesman) and the fields queries filter on.
struct ring_entry {
  std::uint64_t seq = 0;           // set by the ring, 1 for the first record pushed
  wall_clock::time_point ended{};  // accept time + duration
  std::string listener;
  std::string id;
  stop_phase phase = stop_phase::stream;
  stop_reason reason = stop_reason::proxy_error;
  std::string line;
};

// make_ring_entry: the entry of final record `r` whose linesman JSON text is `line`.
ring_entry make_ring_entry(const access_record& r, std::string line);

// records_query: the filters of GET /api/records (every field optional but limit).
struct records_query {
  std::optional<std::chrono::milliseconds> since;  // ended at most this long ago
  std::optional<stop_phase> phase;
  std::optional<stop_reason> reason;
  std::optional<std::string> listener;
  std::optional<std::string> id;
  std::size_t limit = 100;
};

// funnel_query: the filters of GET /api/funnel.
struct funnel_query {
  std::chrono::milliseconds window{std::chrono::minutes(5)};
  std::optional<std::string> listener;
};

using query_params = std::multimap<std::string, std::string>;

inline constexpr std::size_t kMaxRecordsLimit = 1000;
inline constexpr auto kMaxWindow = std::chrono::hours(24);

// parse_records_query / parse_funnel_query: the query of one request (httplib's params), or the
// text of a 400 naming the parameter and what it accepts. Refused: an unknown parameter, one
// given twice, a value longer than 256 bytes, not UTF-8 or holding a control character, a limit
// outside 1..kMaxRecordsLimit, a duration that is not positive or exceeds kMaxWindow, an unknown
// phase or reason.
std::variant<records_query, std::string> parse_records_query(const query_params& q);
std::variant<funnel_query, std::string> parse_funnel_query(const query_params& q);

// ring_view: what a query found. `lines` newest first, at most the limit; `matched` counts every
// entry that matched before the limit was applied.
struct ring_view {
  std::vector<std::string> lines;
  std::size_t matched = 0;
};

// ring_coverage: what the ring holds right now.
struct ring_coverage {
  std::size_t held = 0;
  std::size_t held_bytes = 0;
  std::uint64_t pushed = 0;   // records ever pushed
  std::uint64_t evicted = 0;  // records pushed then evicted (or too large to keep)
  std::optional<wall_clock::time_point> oldest_ended;    // among the held ones
  std::optional<wall_clock::time_point> newest_evicted;  // latest end among the evicted
};

// funnel_counts: per stop phase and reason, the records of the window (and listener).
struct funnel_counts {
  std::array<std::array<std::uint64_t, kStopReasons>, kStopPhases> ended{};
  std::uint64_t total = 0;
  // complete: no record of the window was evicted (the window starts after newest_evicted).
  bool complete = true;
};

class record_ring {
 public:
  static constexpr std::size_t kDefaultRecords = 10000;
  static constexpr std::size_t kDefaultBytes = std::size_t{8} << 20;
  // kEntryOverhead: what an entry costs besides its strings' bytes (counted in the byte bound).
  static constexpr std::size_t kEntryOverhead = 128;

  explicit record_ring(std::size_t max_records = kDefaultRecords,
                       std::size_t max_bytes = kDefaultBytes);

  // push: adds `batch` (oldest first), evicting the oldest entries as the bounds require. An
  // entry larger than max_bytes alone is not kept (counted as evicted).
  void push(std::vector<ring_entry>&& batch);

  [[nodiscard]] ring_view query(const records_query& q, wall_clock::time_point now) const;
  [[nodiscard]] funnel_counts funnel(const funnel_query& q, wall_clock::time_point now) const;
  [[nodiscard]] ring_coverage coverage() const;

  [[nodiscard]] std::size_t max_records() const { return max_records_; }
  [[nodiscard]] std::size_t max_bytes() const { return max_bytes_; }

  // cost: what `e` counts against max_bytes.
  static std::size_t cost(const ring_entry& e);

 private:
  void evict_front_locked();

  const std::size_t max_records_;
  const std::size_t max_bytes_;
  mutable std::mutex mu_;
  std::deque<ring_entry> entries_;
  std::size_t bytes_ = 0;
  std::uint64_t next_seq_ = 1;
  std::uint64_t evicted_ = 0;
  std::optional<wall_clock::time_point> newest_evicted_;
};

}  // namespace linesman::proxy
