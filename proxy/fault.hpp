// fault: injected failures (`--fault SPEC`, a listener's YAML `faults:`, POST /api/faults) as
// plain parsed values, and the table that decides, once per connection, which one applies.
//
//   SPEC = NAME[:key=value[,key=value...]]
//   split_hello:segments=N[,gap=DUR]      the client's first flight in N writes, DUR apart
//   split_hello:records=N[,first=B]       the ClientHello re-framed into N TLS records
//   latency:ms=M[,jitter=J]               each chunk held M +- J ms
//   bandwidth:kbps=K                      a rate limit of K kilobits per second
//   reset:after=hello|first_reply|bytes=N an RST (SO_LINGER 0) once the point is passed
//   blackhole                             read, never forward
//   slow_close:delay=DUR                  a FIN held back DUR
//   truncate_hello:bytes=N                N bytes of the first flight, then a FIN upstream
// Keys every fault takes: probability=P (0..1; exactly 0 never applies, 1 always),
// direction=up|down|both (up = client to upstream; only where it makes sense), sni=GLOB (`*`, `?`,
// case-insensitive), route=NAME.
//
// Parsing is control plane: parse_fault throws config_error naming the bad key. The behaviour
// itself lives in proxy/fault_apply.cpp; a connection holds an applied_fault only when one
// applies (null otherwise: an unfaulted connection pays nothing).
#pragma once

#include "proxy/config.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace linesman::proxy {

enum class fault_kind : std::uint8_t {
  split_hello,
  latency,
  bandwidth,
  reset,
  blackhole,
  slow_close,
  truncate_hello,
};
inline constexpr std::size_t kFaultKinds = 7;
std::string_view to_string(fault_kind k);

// fault_direction: up = client to upstream, down = upstream to client.
enum class fault_direction : std::uint8_t { up, down, both };

// reset_point: when reset fires: the client's first flight forwarded, the upstream's first
// reply forwarded, or `bytes` forwarded in both directions together.
enum class reset_point : std::uint8_t { hello, first_reply, bytes };

// Bounds (a fault is a test tool; these keep a typo from parking a connection for days).
inline constexpr unsigned kMaxSplitPieces = 64;
inline constexpr duration kMaxFaultDelay{std::chrono::minutes(10)};
inline constexpr std::uint64_t kMaxKbps = 100'000'000;  // 100 Gbit/s
inline constexpr std::size_t kMaxFaults = 256;          // in one table (POST /api/faults)

// fault_spec: one parsed fault. Only the members of its kind are meaningful.
struct fault_spec {
  fault_kind kind = fault_kind::blackhole;
  std::string text;  // as given, for messages and GET /api/faults
  // params: every key=value as given, in order (the record's fault.params)
  std::vector<std::pair<std::string, std::string>> params;
  unsigned segments = 0;        // split_hello: N writes (0: records mode)
  unsigned records = 0;         // split_hello: N records (0: segments mode)
  std::size_t first_bytes = 0;  // split_hello records: handshake bytes in the first (0: even)
  duration gap{0};              // split_hello segments
  duration latency{0};
  duration jitter{0};
  std::uint64_t kbps = 0;
  reset_point after = reset_point::hello;
  std::uint64_t after_bytes = 0;  // reset after=bytes=N
  duration delay{0};              // slow_close
  std::uint64_t bytes = 0;        // truncate_hello
  double probability = 1.0;
  fault_direction direction = fault_direction::both;
  std::string sni;    // glob; empty = any connection
  std::string route;  // route name; empty = any connection

  // acts_on: whether this fault shapes direction `up` (client to upstream) or the other.
  [[nodiscard]] bool acts_on(bool up) const {
    return direction == fault_direction::both || (direction == fault_direction::up) == up;
  }
  // needs_hello: whether it can only be decided or applied with the client's first flight held
  // (a hello-shaped fault, or an sni= filter).
  [[nodiscard]] bool needs_hello() const {
    return kind == fault_kind::split_hello || kind == fault_kind::truncate_hello ||
           (kind == fault_kind::reset && after == reset_point::hello) || !sni.empty();
  }
};

// parse_fault: `text` as a fault spec. Throws config_error "WHAT: 'TEXT': key 'K': why" (or
// naming the fault name) on an unknown name or key, a missing required key, a duplicate key, a
// key that does not apply, or a value out of range.
fault_spec parse_fault(std::string_view text, std::string_view what);

// glob_match: `name` against `pattern` (`*` any run, `?` one character), ASCII case-insensitive.
// Iterative, linear in |pattern| * |name| at worst.
bool glob_match(std::string_view pattern, std::string_view name);

// applied_fault: the fault a connection got, with the per-connection state its behaviour needs.
// Owned by the connection (null when no fault applies).
struct applied_fault {
  fault_spec spec;
  std::uint64_t moved = 0;    // bytes forwarded, both directions (reset after=bytes)
  std::uint64_t up_sent = 0;  // client bytes forwarded (truncate_hello)
  bool hello_sent = false;    // the held first flight went out (split_hello, reset after=hello)
  bool truncated = false;     // truncate_hello closed the upstream's write side
  bool fired = false;         // reset fired
};

// fault_entry: one fault in the table, as GET /api/faults lists it.
struct fault_entry {
  std::uint64_t id = 0;
  std::string listener;  // the listener it applies to; empty = every listener
  std::string source;    // "config" (flags, YAML) or "admin"
  std::shared_ptr<const fault_spec> spec;
};

// fault_table: every fault of the process, shared by the workers and the admin thread
// (thread-safe). decide() is called once per connection of a listener that may have faults.
class fault_table {
 public:
  // fault_table: `seed` seeds the generator that rolls probabilities (--fault-seed).
  explicit fault_table(std::uint64_t seed) : rng_(seed) {}

  // add: a fault for `listener` (empty: all); returns its id (1, 2, ...), or 0 when the table
  // already holds kMaxFaults (nothing added).
  std::uint64_t add(fault_spec spec, std::string listener, std::string source);
  // replace_config: the faults from flags and YAML (source "config") become `faults` (listener
  // name, spec), ahead of the admin's; on start and on each reload of the configuration.
  void replace_config(std::vector<std::pair<std::string, fault_spec>> faults);
  // remove: false when no fault has this id.
  bool remove(std::uint64_t id);
  [[nodiscard]] std::vector<fault_entry> list() const;

  // needs_hello: whether a connection on `listener` must hold its first flight before connecting
  // (some fault that may apply to it needs it). Lock-free when the table is empty.
  [[nodiscard]] bool needs_hello(std::string_view listener) const;

  // decide: the fault for one connection, or null. The first fault (in id order) that matches
  // the listener, SNI and route and wins its probability roll applies; rolls happen only for
  // matching faults with 0 < P < 1, so a seeded run is reproducible connection by connection.
  // Without `held` (the first flight was not held back) faults that need it are skipped.
  // Counts the applied fault (applied()).
  std::unique_ptr<applied_fault> decide(std::string_view listener, std::string_view sni,
                                        std::string_view route, bool held);

  // applied: faults applied so far, by kind (linesman_faults_applied_total).
  [[nodiscard]] std::uint64_t applied(fault_kind k) const {
    return applied_[static_cast<std::size_t>(k)].load(std::memory_order_relaxed);
  }

 private:
  mutable std::mutex mu_;
  std::vector<fault_entry> entries_;
  std::atomic<std::size_t> count_{0};
  std::uint64_t next_id_ = 1;
  std::mt19937_64 rng_;
  std::array<std::atomic<std::uint64_t>, kFaultKinds> applied_{};
};

}  // namespace linesman::proxy
