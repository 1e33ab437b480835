// live: what the admin endpoint shows while connections are still open - a per-worker registry of
// live-connection snapshots and the process-wide counters behind /metrics.
//
// Cost model: a connection owns its live_conn and links it into its worker's live_registry (one
// mutex, taken at register/unregister, at the few phase changes that set strings, and when the
// admin thread reads). Phase, phase start and byte counts are relaxed atomics the connection
// already updates; nothing is added per byte.
#pragma once

#include "proxy/stop.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::proxy {

// live_phase: where an open connection is waiting (the first four stop phases, without route,
// which never waits).
enum class live_phase : std::uint8_t { inspect, connect, first_reply, stream };
inline constexpr std::size_t kLivePhases = 4;
std::string_view to_string(live_phase p);
std::optional<live_phase> parse_live_phase(std::string_view s);

// histogram: a Prometheus histogram of seconds with fixed upper bounds (kBounds) plus +Inf.
// observe() is lock-free; a scrape may see a count and sum from slightly different instants.
class histogram {
 public:
  static constexpr std::array<double, 12> kBounds{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                  0.25,  0.5,   1.0,  2.5,   5.0,  10.0};
  void observe_us(std::int64_t us);
  // snapshot: cumulative counts per bound (kBounds.size() + 1 entries, the last is +Inf), the
  // sum in seconds and the count.
  struct view {
    std::array<std::uint64_t, kBounds.size() + 1> cumulative{};
    double sum_seconds = 0;
    std::uint64_t count = 0;
  };
  [[nodiscard]] view snapshot() const;

 private:
  std::array<std::atomic<std::uint64_t>, kBounds.size() + 1> buckets_{};  // not cumulative
  std::atomic<std::uint64_t> sum_us_{0};
  std::atomic<std::uint64_t> count_{0};
};

// flight_outcome: what inspection made of the client's first flight (metrics label).
enum class flight_outcome : std::uint8_t {
  complete,
  incomplete,
  malformed,
  too_large,
  not_tls,
  none
};
inline constexpr std::size_t kFlightOutcomes = 6;
std::string_view to_string(flight_outcome o);

inline constexpr std::size_t kStopPhases = 5;
inline constexpr std::size_t kStopReasons = static_cast<std::size_t>(stop_reason::proxy_error) + 1;

// kWarningKinds: the number of named record warnings (proxy/hint.hpp kRecordWarnings).
inline constexpr std::size_t kWarningKinds = 7;

// listener_stats: one listener's counters; lives as long as the server (listener_runtime points
// at it). Connection-ended counters and bytes are added by the connection when it unregisters,
// under its worker's registry mutex, so a scrape never counts a connection twice or not at all.
struct listener_stats {
  std::string name;
  std::string listen;  // as bound, "127.0.0.1:8080"
  std::array<std::array<std::atomic<std::uint64_t>, kStopReasons>, kStopPhases> ended{};
  std::atomic<std::uint64_t> closed_from_client{0};
  std::atomic<std::uint64_t> closed_from_upstream{0};
  std::array<std::atomic<std::uint64_t>, kFlightOutcomes>
      flight{};  // metric linesman_peek_outcomes_total
  std::atomic<std::uint64_t> splice_fallbacks{0};
  // warnings: ended connections per record warning (kRecordWarnings order, proxy/hint.hpp),
  // metric linesman_warnings_total.
  std::array<std::atomic<std::uint64_t>, kWarningKinds> warnings{};
  histogram connect_seconds;
  histogram first_reply_seconds;
};

// count_warnings: adds an ended record's `warnings` to st.warnings (names not in
// kRecordWarnings are not counted).
void count_warnings(listener_stats& st, const std::vector<std::string>& warnings);

// live_conn: the published snapshot of one open connection. Owned by the connection (a member),
// linked into exactly one live_registry between link() and unlink(). Strings are written only
// under the registry mutex (registry::set_*), atomics by the owning worker thread alone.
struct live_conn {
  std::string id;
  const listener_stats* listener = nullptr;
  std::string client;    // "127.0.0.1:50000"
  std::string sni;       // empty when none seen
  std::string route;     // empty when no route
  std::string upstream;  // as configured, empty before connect
  std::chrono::system_clock::time_point accepted_wall{};
  std::atomic<std::uint8_t> phase{0};
  // pq_key_share: the client's hello carried a post-quantum key share (sits in phase's padding).
  std::atomic<bool> pq_key_share{false};
  std::atomic<std::int64_t> phase_start_ns{0};  // steady_clock, since its epoch
  // phase_at_ns: when each phase began (steady ns, 0 = not reached), for the admin page's
  // timeline of an open connection; set_phase writes it, entering inspect clears the rest.
  std::array<std::atomic<std::int64_t>, kLivePhases> phase_at_ns{};
  std::atomic<std::int64_t> accepted_ns{0};
  // The connection's own record counters (record::bytes), written by its worker with
  // bump_counter and read here through std::atomic_ref; valid while linked.
  std::uint64_t* from_client = nullptr;
  std::uint64_t* from_upstream = nullptr;
  live_conn* prev = nullptr;
  live_conn* next = nullptr;
  bool linked = false;
};

// bump_counter: `x += n` for a counter another thread may read through std::atomic_ref (a single
// writer, so a relaxed load and store: no locked instruction).
inline void bump_counter(std::uint64_t& x, std::uint64_t n) {
  std::atomic_ref<std::uint64_t> a(x);
  a.store(a.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
}

// live_copy: a plain copy of a live_conn taken under the registry mutex (for the admin thread).
struct live_copy {
  std::string id, listener, client, sni, route, upstream;
  live_phase phase = live_phase::inspect;
  bool pq_key_share = false;
  double age_seconds = 0;    // since accept
  double phase_seconds = 0;  // time in the current phase
  // phase_at_seconds: when each phase began, in seconds since accept (-1 = not reached).
  std::array<double, kLivePhases> phase_at_seconds{-1, -1, -1, -1};
  std::uint64_t from_client = 0;
  std::uint64_t from_upstream = 0;
  std::chrono::system_clock::time_point accepted_wall{};
};

// open_totals: one listener's open connections, as /metrics counts them: how many wait in each
// phase, and the bytes they have received so far.
struct open_totals {
  std::array<std::uint64_t, kLivePhases> in_phase{};
  std::uint64_t from_client = 0;
  std::uint64_t from_upstream = 0;
};
// open_by_listener: open_totals by listener name.
using open_by_listener = std::map<std::string, open_totals, std::less<>>;

// live_registry: the open connections of one worker (an intrusive list).
class live_registry {
 public:
  void link(live_conn& c);
  // unlink: removes `c` (no-op when not linked) and, in the same critical section, adds its final
  // figures to its listener's counters via `account` (may be empty).
  template <class F>
  void unlink(live_conn& c, F&& account) {
    std::lock_guard lock(mu_);
    account();
    unlink_locked(c);
  }
  void unlink(live_conn& c) {
    std::lock_guard lock(mu_);
    unlink_locked(c);
  }
  // set_strings: sets sni/route/upstream (a nullptr leaves that one unchanged).
  void set_strings(live_conn& c, const std::string* sni, const std::string* route,
                   const std::string* upstream);
  // copy_all: appends every linked connection to `out`; `now_ns` is steady_clock now.
  void copy_all(std::vector<live_copy>& out, std::int64_t now_ns) const;
  // add_totals: adds every linked connection to its listener's totals in `out`, copying no
  // string under the mutex (a scrape of /metrics must not stall the worker it reads).
  void add_totals(std::map<const listener_stats*, open_totals>& out) const;

 private:
  void unlink_locked(live_conn& c);
  mutable std::mutex mu_;
  live_conn* head_ = nullptr;
};

// steady_ns: steady_clock::now() in nanoseconds since its epoch.
std::int64_t steady_ns();

// set_phase: the owning worker thread moves `c` to phase `p` now.
void set_phase(live_conn& c, live_phase p);

// live_hub: everything the admin endpoint reads; owned by the server for its lifetime.
class fault_table;  // proxy/fault.hpp
class record_ring;  // proxy/record_ring.hpp

struct live_hub {
  // listeners: the listeners of the current configuration; a reload replaces the list under
  // `mu` (the stats themselves live as long as the server), readers take current_listeners().
  std::vector<listener_stats*> listeners;
  fault_table* faults = nullptr;      // the server's fault table (null in tests)
  const record_ring* ring = nullptr;  // recent final records (null without --admin)
  std::vector<live_registry*> registries;
  std::size_t max_connections = 0;  // the accept limit (--max-connections or derived), a gauge
  std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
  mutable std::mutex mu;
  // Process-wide counters: connections accepted (linesman_connections_accepted_total), reloads
  // of the --config file by result, and the configuration generation in use (a gauge).
  std::atomic<std::uint64_t> accepted{0};
  std::atomic<std::uint64_t> reloads_success{0};
  std::atomic<std::uint64_t> reloads_failure{0};
  std::atomic<std::uint64_t> config_generation{1};

  [[nodiscard]] std::vector<live_copy> snapshot() const;
  // count_open: what /metrics needs of the open connections, without a snapshot's copies.
  [[nodiscard]] open_by_listener count_open() const;
  [[nodiscard]] std::vector<const listener_stats*> current_listeners() const;
  void set_listeners(std::vector<listener_stats*> l);
};

// format_metrics: the Prometheus text exposition (format 0.0.4) of `hub` and `open` (its
// count_open() taken just before). Every family has HELP and TYPE lines; label values are
// escaped.
std::string format_metrics(const live_hub& hub, const open_by_listener& open);

// append_histogram: one histogram family member in text format (for format_metrics and tests).
void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const histogram::view& v);

// escape_label: a Prometheus label value (backslash, double quote and newline escaped).
std::string escape_label(std::string_view v);

}  // namespace linesman::proxy
