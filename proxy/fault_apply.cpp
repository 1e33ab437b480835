// The injected faults of proxy/fault.hpp, applied to one connection of proxy/connection.hpp.
//
// A fault is decided once, after routing and before the upstream connect (decide_fault); a
// connection without one never reaches this file. A faulted direction runs fault_relay instead of
// the inspection (inspect_next) + splice: every byte passes through userspace so each write can be
// held, cut, re-framed, paced or dropped. The facts are recorded as usual and the stop is still
// decided by classify(facts) (proxy/stop.cpp); a reset fault sets facts.fault_reset so classify can
// say so.
#include "capture/hello_rewrite.hpp"
#include "proxy/connection.hpp"
#include "proxy/connection_detail.hpp"

#include <algorithm>
#include <random>

#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

using detail::steady;

// kFaultCopyBytes: the userspace buffer of a faulted direction after its first flight.
constexpr std::size_t kFaultCopyBytes = 16384;
// kPauseSlice: a fault's pause wakes this often to see whether the connection is ending (the
// watchdog cancels the sockets, not our timers).
constexpr auto kPauseSlice = std::chrono::milliseconds(50);

}  // namespace

// fault_pace: one direction's bandwidth budget: when its first byte went and how many since.
struct connection::fault_pace {
  steady::time_point start{};
  std::uint64_t sent = 0;
};

void connection::decide_fault(const route_config* route, bool held) {
  std::string_view sni;
  if (record_.tls && record_.tls->sni) {
    sni = *record_.tls->sni;
  }
  fault_ = listener_.faults->decide(listener_.cfg.name, sni,
                                    route != nullptr ? std::string_view(route->name) : "", held);
  if (!fault_) {
    return;
  }
  fault_value v;
  v.name = std::string(to_string(fault_->spec.kind));
  v.params = fault_->spec.params;
  record_.fault = std::move(v);
  spdlog::debug("{} fault {}", record_.id, fault_->spec.text);
}

asio::awaitable<bool> connection::fault_pause(steady::duration d) {
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::steady_timer t(client().get_executor());
  const auto until = steady::now() + d;
  // Bytes (or a FIN) held by the fault are not idleness: the idle watchdog counts from the end
  // of the pause.
  last_activity_ = std::max(last_activity_, until);
  while (!aborting_ && steady::now() < until) {
    t.expires_at(std::min(until, steady::now() + kPauseSlice));
    co_await t.async_wait(kTuple);
  }
  co_return !aborting_;
}

void connection::fire_fault_reset() {
  // An RST (SO_LINGER {1, 0} at close) to the side(s) the fault names; the other side gets a FIN.
  const fault_spec& s = fault_->spec;
  fault_->fired = true;
  const bool to_client = s.acts_on(false);
  const bool to_upstream = s.acts_on(true);
  facts_.fault_reset = true;
  facts_.fault_reset_client = to_client;
  src(dir::c2u).reset_on_close = to_client;
  src(dir::u2c).reset_on_close = to_upstream;
  for (side_end* e : {&facts_.client_end, &facts_.upstream_end}) {
    if (*e == side_end::none || *e == side_end::open) {
      *e = side_end::proxy;
    }
  }
  if (!facts_.first_close) {
    facts_.first_close = stop_by::proxy;
  }
  stop_relays();
}

asio::awaitable<bool> connection::fault_write(dir d, std::span<const std::uint8_t> bytes,
                                              fault_pace& pace) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const fault_spec& s = fault_->spec;
  const bool up = d == dir::c2u;
  std::uint64_t& to = *counters(d).to;
  if (s.kind == fault_kind::latency && s.acts_on(up)) {
    thread_local std::minstd_rand jitter_rng{std::random_device{}()};
    auto wait = s.latency;
    if (s.jitter.count() > 0) {
      std::uniform_int_distribution<std::int64_t> j(-s.jitter.count(), s.jitter.count());
      wait = std::max(duration(0), wait + duration(j(jitter_rng)));
    }
    if (!co_await fault_pause(wait)) {
      co_return false;
    }
  }
  // bandwidth: slices of 50 ms at the rate, each sent when the budget so far allows it.
  const bool paced = s.kind == fault_kind::bandwidth && s.acts_on(up);
  const std::size_t slice =
      paced ? std::clamp<std::size_t>(s.kbps * 1000 / 8 / 20, 1, kFaultCopyBytes) : bytes.size();
  while (!bytes.empty()) {
    const auto piece = bytes.first(std::min(slice, bytes.size()));
    if (paced) {
      if (pace.sent == 0) {
        pace.start = steady::now();
      }
      const auto due =
          pace.start + std::chrono::nanoseconds(static_cast<std::int64_t>(
                           static_cast<double>(pace.sent) * 8e6 / static_cast<double>(s.kbps)));
      if (due > steady::now() && !co_await fault_pause(due - steady::now())) {
        co_return false;
      }
    }
    auto [ec, n] =
        co_await asio::async_write(dst(d).socket, asio::buffer(piece.data(), piece.size()), kTuple);
    to += n;
    fault_->moved += n;
    pace.sent += n;
    last_activity_ = steady::now();  // a slow, shaped transfer is not an idle one
    if (aborting_) {
      co_return false;
    }
    if (ec) {
      note_end(d, classify_write_error(ec));
      co_return false;
    }
    bytes = bytes.subspan(piece.size());
  }
  co_return true;
}

asio::awaitable<bool> connection::fault_forward(dir d, std::span<const std::uint8_t> bytes,
                                                fault_pace& pace) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const fault_spec& s = fault_->spec;
  const bool up = d == dir::c2u;
  const bool first = up && !fault_->hello_sent;
  if (up) {
    fault_->hello_sent = true;
  }
  if (s.kind == fault_kind::blackhole && s.acts_on(up)) {
    co_return true;  // read, counted, never forwarded
  }
  if (s.kind == fault_kind::truncate_hello && up) {
    const std::uint64_t left = s.bytes > fault_->up_sent ? s.bytes - fault_->up_sent : 0;
    bytes = bytes.first(std::min<std::uint64_t>(left, bytes.size()));
    fault_->up_sent += bytes.size();
  }
  if (s.kind == fault_kind::reset && s.after == reset_point::bytes) {
    const std::uint64_t left = s.after_bytes > fault_->moved ? s.after_bytes - fault_->moved : 0;
    bytes = bytes.first(std::min<std::uint64_t>(left, bytes.size()));
  }
  std::vector<std::uint8_t> reframed;
  std::vector<std::size_t> pieces;
  if (first && s.kind == fault_kind::split_hello) {
    std::error_code ignored;
    dst(d).socket.set_option(asio::ip::tcp::no_delay(true), ignored);  // each write its segment
    std::string why;
    if (s.records != 0 && capture::split_records(bytes, s.records, s.first_bytes, reframed, why)) {
      bytes = reframed;
    } else if (s.records != 0) {
      spdlog::debug("{} fault {} not applied: {}", record_.id, s.text, why);
      record_.warnings.emplace_back("fault_not_applied");
    } else {
      pieces = capture::segment_sizes(bytes.size(), s.segments);
    }
  }
  if (pieces.empty()) {
    pieces.push_back(bytes.size());  // after any re-framing: the bytes as they are now
  }
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (i > 0 && s.gap.count() > 0 && !co_await fault_pause(s.gap)) {
      co_return false;
    }
    if (!co_await fault_write(d, bytes.first(pieces[i]), pace)) {
      co_return false;
    }
    bytes = bytes.subspan(pieces[i]);
  }
  if (s.kind == fault_kind::truncate_hello && up && fault_->up_sent >= s.bytes &&
      !fault_->truncated) {
    // The cut: a FIN upstream after N bytes; what the client sends later is read and dropped.
    fault_->truncated = true;
    std::error_code ignored;
    dst(d).socket.shutdown(asio::socket_base::shutdown_send, ignored);
  }
  if (s.kind == fault_kind::reset && !fault_->fired &&
      ((s.after == reset_point::hello && first) || (s.after == reset_point::first_reply && !up) ||
       (s.after == reset_point::bytes && fault_->moved >= s.after_bytes))) {
    fire_fault_reset();
    co_return false;
  }
  co_return true;
}

asio::awaitable<connection::fault_step_end> connection::fault_step(
    dir d, fault_pace& pace, std::unique_ptr<std::uint8_t[]>& copy, relay_result& res) {
  co_await asio::this_coro::throw_if_cancelled(false);
  flight& f = src(d).first;
  // The first flight goes through its bounded buffer (inspected like an unfaulted one), the rest
  // through the copy buffer.
  std::span<std::uint8_t> into;
  if (!f.done) {
    into = f.buf.room(f.len);
  } else {
    f.buf.reset();
    if (!copy) {
      copy = std::make_unique_for_overwrite<std::uint8_t[]>(kFaultCopyBytes);
    }
    into = {copy.get(), kFaultCopyBytes};
  }
  auto [ec, n] =
      co_await src(d).socket.async_read_some(asio::buffer(into.data(), into.size()), kTuple);
  if (aborting_ || ec == asio::error::operation_aborted) {
    co_return fault_step_end::over;
  }
  if (ec) {
    if (!f.done) {
      inspect_flight(d, true);
    }
    res = classify_read_error(ec);
    co_return fault_step_end::source_ended;
  }
  record_bytes(d, into.data(), n);
  on_bytes(d, n);
  if (!f.done) {
    f.len += n;
    f.forwarded += n;
    ++f.reads;
    inspect_flight(d, f.len == kFlightBufferBytes || (d == dir::c2u && dst(d).first.len > 0));
  }
  const bool forwarded = co_await fault_forward(d, into.first(n), pace);
  co_return forwarded ? fault_step_end::more : fault_step_end::over;
}

asio::awaitable<std::optional<relay_result>> connection::fault_relay(dir d) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const bool up = d == dir::c2u;
  flight& f = src(d).first;
  fault_pace pace;
  // 1. What the client sent while we inspected or connected (with a hello-shaped fault: its
  // whole first flight) goes out first, shaped.
  if (f.len > f.forwarded) {
    const std::span<const std::uint8_t> held(f.buf.get() + f.forwarded, f.len - f.forwarded);
    f.forwarded = f.len;
    if (!co_await fault_forward(d, held, pace)) {
      co_return std::nullopt;
    }
  }
  relay_result res{relay_end::cancelled, 0};
  const bool eof_seen = up && facts_.client_end == side_end::fin;
  std::unique_ptr<std::uint8_t[]> copy;
  // 2. The rest, read by read. Each step reads at least one byte or ends the loop.
  while (!eof_seen && !aborting_) {
    const auto step = co_await fault_step(d, pace, copy, res);
    if (step == fault_step_end::over) {
      co_return std::nullopt;
    }
    if (step == fault_step_end::source_ended) {
      break;
    }
  }
  if (!up && !f.done) {
    inspect_flight(d, true);
  }
  f.buf.reset();
  if (eof_seen) {
    res = {relay_end::src_eof, 0};
  }
  const fault_spec& s = fault_->spec;
  if (!aborting_ && res.end == relay_end::src_eof && s.kind == fault_kind::slow_close &&
      s.acts_on(up) && !co_await fault_pause(s.delay)) {
    co_return std::nullopt;  // the FIN held back; the watchdog or a reset ended it meanwhile
  }
  if (aborting_) {
    co_return std::nullopt;
  }
  co_return res;
}

}  // namespace linesman::proxy
