#include "proxy/connection.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

#include "proxy/hint.hpp"

namespace linesman::proxy {
namespace {

using asio::experimental::as_tuple;
using namespace asio::experimental::awaitable_operators;
using steady = std::chrono::steady_clock;
constexpr auto kTuple = as_tuple(asio::use_awaitable);

// kCopyBufferBytes: the userspace buffer of the read/write fallback (only with --no-splice or
// when splice is unsupported).
constexpr std::size_t kCopyBufferBytes = 65536;

endpoint_value to_value(const asio::ip::tcp::endpoint& ep) {
  endpoint_value v;
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  v.ip = addr.to_string();
  v.port = ep.port();
  return v;
}

int errno_of(const std::error_code& ec) {
  return ec.category() == asio::error::get_system_category() ? ec.value() : 0;
}

// reset_on_close: SO_LINGER {1, 0} makes close() send an RST instead of a FIN.
void reset_on_close(asio::ip::tcp::socket& s) {
  std::error_code ignored;
  s.set_option(asio::socket_base::linger(true, 0), ignored);
}

void tune(asio::ip::tcp::socket& s) {
  std::error_code ignored;
  s.non_blocking(true, ignored);
  // No Nagle: a transparent proxy must not add latency to small writes the peers already timed.
  s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

asio::awaitable<void> park_forever(asio::any_io_executor ex) {
  co_await asio::this_coro::throw_if_cancelled(false);
  asio::steady_timer t(ex, steady::time_point::max());
  co_await t.async_wait(kTuple);
}

bool cancelled_state(asio::cancellation_type t) { return t != asio::cancellation_type::none; }

// A child of `||` must look at its cancellation state after every resume: an operation that had
// already completed when the race was decided is not cancelled, and the next one would not be
// either (the signal fires once), so the loser would run on and the race never end.
#define LINESMAN_RETURN_IF_CANCELLED(value)                            \
  do {                                                                 \
    const auto lm_state = co_await asio::this_coro::cancellation_state; \
    if (cancelled_state(lm_state.cancelled())) {                       \
      co_return value;                                                 \
    }                                                                  \
  } while (false)

}  // namespace

connection::connection(asio::ip::tcp::socket client, const listener_runtime& l, worker_state& w,
                       std::string id)
    : client_(std::move(client)),
      upstream_(client_.get_executor()),
      l_(l),
      w_(w),
      watch_timer_(client_.get_executor()) {
  w_.live.push_front(this);
  reg_ = w_.live.begin();
  rec_.id = std::move(id);
}

connection::~connection() {
  w_.live.erase(reg_);
  if (w_.active != nullptr) {
    w_.active->fetch_sub(1, std::memory_order_relaxed);
  }
}

void connection::request_shutdown() {
  if (shutdown_) {
    return;
  }
  shutdown_ = true;
  watch_timer_.cancel();
}

std::int64_t connection::since_accept_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - accepted_).count();
}

void connection::start_record() {
  rec_.ts = std::chrono::system_clock::now();
  accepted_ = steady::now();
  last_activity_ = accepted_;
  rec_.listener = l_.cfg.name;
  std::error_code ec;
  const auto remote = client_.remote_endpoint(ec);
  if (!ec) {
    rec_.client = to_value(remote);
  }
  const auto local = client_.local_endpoint(ec);
  if (!ec) {
    rec_.local = to_value(local);
  }
  tune(client_);
}

void connection::stop_relays() {
  // The watchdog won: make both directions return at their next wake-up, and wake them now.
  abort_ = true;
  std::error_code ignored;
  client_.cancel(ignored);
  upstream_.cancel(ignored);
}

bool connection::client_spoke_tls() const {
  // Only a whole ClientHello (or one too large to inspect) counts: a single 0x16 or 0x80 byte
  // merely starts like TLS, and an echo of it is not an upstream_not_tls.
  return ccheck_.hello_complete || ccheck_.verdict == client_verdict::too_large;
}

void connection::set_stop(stop_phase p, stop_reason r, stop_by by, int err) {
  rec_.stop.phase = p;
  rec_.stop.reason = r;
  rec_.stop.by = by;
  if (err != 0) {
    rec_.stop.errno_name = errno_name(err);
  }
}

void connection::on_client_bytes(std::size_t n) {
  if (rec_.timing.client_first_byte < 0) {
    rec_.timing.client_first_byte = since_accept_us();
  }
  rec_.bytes.from_client += n;
  last_activity_ = steady::now();
}

void connection::on_upstream_bytes(std::size_t n) {
  if (rec_.timing.upstream_first_byte < 0) {
    rec_.timing.upstream_first_byte = since_accept_us();
  }
  rec_.bytes.from_upstream += n;
  last_activity_ = steady::now();
}

asio::awaitable<connection::watch_fire> connection::watch(steady::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    if (shutdown_) {
      co_return watch_fire::shutdown;
    }
    if (steady::now() >= deadline) {
      co_return watch_fire::deadline;
    }
    watch_timer_.expires_at(deadline);
    co_await watch_timer_.async_wait(kTuple);
    // (A named local: GCC 12 miscompiles co_await nested inside this condition.)
    const auto state = co_await asio::this_coro::cancellation_state;
    if (!shutdown_ && cancelled_state(state.cancelled())) {
      co_return watch_fire::deadline;  // the race is over; the value is ignored
    }
  }
}

void connection::relay_done() {
  if (--relays_left_ == 0) {
    watch_timer_.cancel();
  }
}

asio::awaitable<std::optional<connection::watch_fire>> connection::watch_stream() {
  const auto idle = l_.cfg.limits.idle;
  std::optional<watch_fire> fired;
  while (relays_left_ > 0) {
    if (!fired) {
      const auto deadline = last_activity_ + idle;
      if (shutdown_ || steady::now() >= deadline) {
        fired = shutdown_ ? watch_fire::shutdown : watch_fire::deadline;
        stop_relays();
        continue;
      }
      // last_activity_ moves on every transfer; the timer is only re-armed when it fires, so a
      // busy connection costs one wake-up per idle period, not one per chunk.
      watch_timer_.expires_at(deadline);
    } else {
      watch_timer_.expires_at(steady::time_point::max());  // relay_done() wakes us
    }
    co_await watch_timer_.async_wait(kTuple);
  }
  co_return fired;
}

asio::awaitable<connection::peek_end> connection::read_client_flight(bool park) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto& f = cflight_;
  while (!f.done) {
    if (!f.buf) {
      // Allocate only once the client has something to say: an idle client costs no buffer.
      auto [ec] = co_await client_.async_wait(asio::socket_base::wait_read, kTuple);
      if (ec) {
        co_return peek_end::cancelled;
      }
      LINESMAN_RETURN_IF_CANCELLED(peek_end::cancelled);
      f.buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFlightBufferBytes);
    }
    auto [ec, n] = co_await client_.async_read_some(
        asio::buffer(f.buf.get() + f.len, kFlightBufferBytes - f.len), kTuple);
    if (ec == asio::error::operation_aborted) {
      co_return peek_end::cancelled;
    }
    if (ec != asio::error::eof || !park) {
      // A read that completed as the race was decided still counts (its bytes are ours), but
      // then stop: the relay or the failure path takes over from here.
      const auto lm_state = co_await asio::this_coro::cancellation_state;
      if (cancelled_state(lm_state.cancelled())) {
        if (!ec) {
          on_client_bytes(n);
          f.len += n;
          ++f.reads;
          const bool full = f.len == kFlightBufferBytes;
          const bool was_complete = ccheck_.hello_complete;
          ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, full, rec_);
          if (ccheck_.hello_complete && !was_complete) {
            rec_.timing.hello_complete = since_accept_us();
          }
          f.done = full || ccheck_.verdict != client_verdict::need_more;
        }
        co_return peek_end::cancelled;
      }
    }
    if (ec) {
      ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, true, rec_);
      f.done = true;
      if (ec == asio::error::eof) {
        client_end_ = side_end::fin;
        if (f.len == 0 || !park) {
          co_return peek_end::eof;
        }
        break;  // bytes then FIN while connecting: a half-close, keep going
      }
      err_ = errno_of(ec);
      client_end_ = ec == asio::error::connection_reset ? side_end::rst : side_end::error;
      co_return ec == asio::error::connection_reset ? peek_end::reset : peek_end::error;
    }
    on_client_bytes(n);
    f.len += n;
    ++f.reads;
    const bool full = f.len == kFlightBufferBytes;
    const bool was_complete = ccheck_.hello_complete;
    ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, full, rec_);
    if (ccheck_.hello_complete && !was_complete) {
      rec_.timing.hello_complete = since_accept_us();
    }
    if (ccheck_.verdict != client_verdict::need_more || full) {
      f.done = true;
    }
  }
  if (!park) {
    co_return peek_end::decided;
  }
  if (client_end_ == side_end::none) {
    // Watch for the client giving up while we connect, without consuming anything it sends.
    for (;;) {
      auto [ec] = co_await client_.async_wait(asio::socket_base::wait_read, kTuple);
      if (ec) {
        co_return peek_end::cancelled;
      }
      LINESMAN_RETURN_IF_CANCELLED(peek_end::cancelled);
      std::uint8_t probe = 0;
      const ssize_t n = ::recv(client_.native_handle(), &probe, 1, MSG_PEEK);
      if (n == 0) {
        if (f.len == 0) {
          client_end_ = side_end::fin;
          co_return peek_end::eof;
        }
        break;  // FIN after data: the relay will pass it on
      }
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        continue;
      }
      if (n < 0) {
        err_ = errno;
        client_end_ = err_ == ECONNRESET ? side_end::rst : side_end::error;
        co_return err_ == ECONNRESET ? peek_end::reset : peek_end::error;
      }
      break;  // more data: it stays queued in the socket until the relay reads it
    }
  }
  LINESMAN_RETURN_IF_CANCELLED(peek_end::cancelled);
  co_await park_forever(client_.get_executor());
  co_return peek_end::cancelled;
}

asio::awaitable<connection::connect_result> connection::connect_upstream(const host_port& target) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::error_code aec;
  const auto numeric = asio::ip::make_address(target.host, aec);
  if (!aec) {
    // A numeric address needs no resolver (asio's resolves on a helper thread: two thread hops
    // and a getaddrinfo per connection).
    auto [cec] = co_await upstream_.async_connect({numeric, target.port}, kTuple);
    if (cec == asio::error::operation_aborted) {
      co_return connect_result{connect_kind::cancelled, cec};
    }
    if (cec) {
      co_return connect_result{connect_kind::failed, cec};
    }
    co_return connect_result{connect_kind::ok, {}};
  }
  asio::ip::tcp::resolver resolver(client_.get_executor());
  // Resolved at connect time, every time: a container address may change between connections.
  auto [rec, results] = co_await resolver.async_resolve(
      target.host, std::to_string(target.port), asio::ip::resolver_base::numeric_service, kTuple);
  if (rec == asio::error::operation_aborted) {
    co_return connect_result{connect_kind::cancelled, rec};
  }
  if (rec || results.empty()) {
    co_return connect_result{connect_kind::resolve_failed, rec};
  }
  LINESMAN_RETURN_IF_CANCELLED((connect_result{connect_kind::cancelled, {}}));
  auto [cec, ep] = co_await asio::async_connect(upstream_, results, kTuple);
  if (cec == asio::error::operation_aborted) {
    co_return connect_result{connect_kind::cancelled, cec};
  }
  if (cec) {
    co_return connect_result{connect_kind::failed, cec};
  }
  co_return connect_result{connect_kind::ok, {}};
}

void connection::note_end(dir d, const pump_result& r) {
  const bool c2u = d == dir::c2u;
  side_end& src_end = c2u ? client_end_ : upstream_end_;
  side_end& dst_end = c2u ? upstream_end_ : client_end_;
  const stop_by src_by = c2u ? stop_by::client : stop_by::upstream;
  const stop_by dst_by = c2u ? stop_by::upstream : stop_by::client;
  auto& dst = c2u ? upstream_ : client_;
  auto& src = c2u ? client_ : upstream_;
  const auto open = [](side_end e) { return e == side_end::none || e == side_end::open; };
  const auto stop_both = [&] {
    abort_ = true;
    std::error_code ignored;
    client_.cancel(ignored);
    upstream_.cancel(ignored);
  };
  switch (r.end) {
    case pump_end::src_eof: {
      if (open(src_end)) {
        src_end = side_end::fin;
      }
      if (!first_) {
        first_ = src_by;
      }
      // A FIN becomes a FIN: the other side may still answer (half-close).
      std::error_code ignored;
      dst.shutdown(asio::socket_base::shutdown_send, ignored);
      break;
    }
    case pump_end::src_reset:
    case pump_end::src_error: {
      src_end = r.end == pump_end::src_reset ? side_end::rst : side_end::error;
      err_ = err_ != 0 ? err_ : r.err;
      if (!first_) {
        first_ = src_by;
      }
      if (open(dst_end) || dst_end == side_end::fin) {
        dst_end = dst_end == side_end::fin ? dst_end : side_end::proxy;
      }
      // A reset is passed on as a reset.
      (c2u ? rst_upstream_ : rst_client_) = true;
      stop_both();
      break;
    }
    case pump_end::dst_reset:
    case pump_end::dst_error: {
      dst_end = r.end == pump_end::dst_reset ? side_end::rst : side_end::error;
      err_ = err_ != 0 ? err_ : r.err;
      if (!first_) {
        first_ = dst_by;
      }
      if (open(src_end)) {
        src_end = side_end::proxy;
      }
      (c2u ? rst_client_ : rst_upstream_) = true;
      stop_both();
      break;
    }
    case pump_end::cancelled:
    case pump_end::no_splice: break;
  }
  (void)src;
}

asio::awaitable<void> connection::relay(dir d) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const bool c2u = d == dir::c2u;
  auto& src = c2u ? client_ : upstream_;
  auto& dst = c2u ? upstream_ : client_;
  flight& f = c2u ? cflight_ : uflight_;
  std::uint64_t& from = c2u ? rec_.bytes.from_client : rec_.bytes.from_upstream;
  std::uint64_t& to = c2u ? rec_.bytes.to_upstream : rec_.bytes.to_client;
  pump_result res{pump_end::cancelled, 0};

  // 1. What the client sent while we were peeking or connecting goes out first.
  if (f.len > f.forwarded) {
    auto [ec, n] = co_await asio::async_write(
        dst, asio::buffer(f.buf.get() + f.forwarded, f.len - f.forwarded), kTuple);
    to += n;
    f.forwarded += n;
    if (ec) {
      note_end(d, classify_write_error(ec));
      co_return;
    }
  }
  const bool eof_seen = c2u && client_end_ == side_end::fin;

  // 2. Inspection: the rest of this direction's first flight passes through the bounded buffer,
  // each read forwarded at once (never held back waiting for a complete hello).
  while (!f.done && !eof_seen && !abort_) {
    if (!f.buf) {
      auto [ec] = co_await src.async_wait(asio::socket_base::wait_read, kTuple);
      if (ec || abort_) {
        co_return;
      }
      LINESMAN_RETURN_IF_CANCELLED();
      f.buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFlightBufferBytes);
    }
    auto [ec, n] = co_await src.async_read_some(
        asio::buffer(f.buf.get() + f.len, kFlightBufferBytes - f.len), kTuple);
    if (abort_ || ec == asio::error::operation_aborted) {
      co_return;
    }
    if (ec) {
      if (c2u) {
        ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, true, rec_);
      } else {
        uverdict_ = inspect_upstream_flight({f.buf.get(), f.len}, client_spoke_tls(), true, rec_);
      }
      res = classify_read_error(ec);
      f.done = true;
      break;
    }
    const std::size_t start = f.len;
    f.len += n;
    ++f.reads;
    const bool full = f.len == kFlightBufferBytes;
    if (c2u) {
      on_client_bytes(n);
      // The reply has started: whatever the client sent before it was its first flight.
      const bool final = full || uflight_.len > 0;
      const bool was_complete = ccheck_.hello_complete;
      ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, final, rec_);
      if (ccheck_.hello_complete && !was_complete) {
        rec_.timing.hello_complete = since_accept_us();
      }
      f.done = final || ccheck_.verdict != client_verdict::need_more;
    } else {
      on_upstream_bytes(n);
      uverdict_ = inspect_upstream_flight({f.buf.get(), f.len}, client_spoke_tls(), full, rec_);
      f.done = full || uverdict_ != reply_verdict::need_more;
    }
    auto [wec, m] = co_await asio::async_write(dst, asio::buffer(f.buf.get() + start, n), kTuple);
    to += m;
    f.forwarded += m;
    if (abort_) {
      co_return;
    }
    if (wec) {
      note_end(d, classify_write_error(wec));
      co_return;
    }
  }
  if (!c2u && !f.done) {
    uverdict_ = inspect_upstream_flight({f.buf.get(), f.len}, client_spoke_tls(), true, rec_);
  }
  // Inspection is over for this direction: give its buffer back before the long stream phase.
  f.buf.reset();
  if (eof_seen) {
    res = {pump_end::src_eof, 0};
  }
  if (abort_) {
    co_return;
  }

  // 3. Stream: splice through a pipe, or the read/write fallback.
  if (res.end == pump_end::cancelled) {
    const pump_counters counters{&from, &to, &last_activity_, &abort_};
    bool fallback = w_.no_splice;
    if (!fallback) {
      res = co_await splice_pump(src, dst, w_.pipes, counters);
      if (res.end == pump_end::no_splice) {
        spdlog::debug("{} splice unavailable ({}); using read/write", rec_.id, errno_name(res.err));
        fallback = true;
      }
    }
    if (fallback) {
      auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kCopyBufferBytes);
      res = co_await copy_pump(src, dst, {buf.get(), kCopyBufferBytes}, counters);
    }
  }
  if (!abort_) {
    note_end(d, res);
  }
}

void connection::classify_after_relay(std::optional<watch_fire> fired) {
  const bool replied = rec_.bytes.from_upstream > 0;
  const auto mark_open = [](side_end& e, side_end how) {
    if (e == side_end::none || e == side_end::open) {
      e = how;
    }
  };
  if (fired) {
    const side_end how = *fired == watch_fire::shutdown ? side_end::proxy : side_end::timeout;
    mark_open(client_end_, how);
    mark_open(upstream_end_, how);
    if (!first_) {
      first_ = stop_by::proxy;
    }
  }
  rec_.ok = false;
  if (fired && *fired == watch_fire::shutdown) {
    set_stop(stop_phase::stream, stop_reason::proxy_shutdown, stop_by::proxy);
    return;
  }
  switch (uverdict_) {
    case reply_verdict::tls_alert:
      set_stop(stop_phase::first_reply, stop_reason::upstream_tls_alert, stop_by::upstream);
      return;
    case reply_verdict::not_tls:
      set_stop(stop_phase::first_reply, stop_reason::upstream_not_tls, stop_by::upstream);
      return;
    case reply_verdict::error_reply:
      set_stop(stop_phase::first_reply, stop_reason::upstream_error_reply, stop_by::upstream);
      return;
    default: break;
  }
  if (!replied) {
    if (fired) {
      const bool client_closed = first_ == stop_by::client;
      if (rec_.bytes.from_client == 0 && client_closed) {
        set_stop(stop_phase::first_reply, stop_reason::client_gave_up, stop_by::client);
      } else if (rec_.bytes.from_client == 0) {
        set_stop(stop_phase::inspect, stop_reason::client_silent, stop_by::client);
      } else {
        set_stop(stop_phase::first_reply, stop_reason::upstream_silent, stop_by::upstream);
      }
      return;
    }
    if (client_end_ == side_end::error || upstream_end_ == side_end::error) {
      set_stop(stop_phase::stream, stop_reason::proxy_error, stop_by::proxy, err_);
      return;
    }
    const bool upstream_ended_itself =
        upstream_end_ == side_end::fin || upstream_end_ == side_end::rst;
    if (first_ == stop_by::client &&
        (client_end_ == side_end::rst || rec_.bytes.from_client == 0 || !upstream_ended_itself)) {
      set_stop(stop_phase::first_reply, stop_reason::client_gave_up, stop_by::client,
               client_end_ == side_end::rst ? ECONNRESET : 0);
      return;
    }
    if (upstream_end_ == side_end::rst) {
      set_stop(stop_phase::first_reply, stop_reason::upstream_reset, stop_by::upstream, ECONNRESET);
    } else {
      set_stop(stop_phase::first_reply, stop_reason::upstream_closed_silently, stop_by::upstream);
    }
    return;
  }
  if (fired) {
    set_stop(stop_phase::stream, stop_reason::idle_timeout, stop_by::proxy);
    return;
  }
  if (client_end_ == side_end::error || upstream_end_ == side_end::error) {
    set_stop(stop_phase::stream, stop_reason::proxy_error, stop_by::proxy, err_);
    return;
  }
  if (first_ == stop_by::client && client_end_ == side_end::rst) {
    set_stop(stop_phase::stream, stop_reason::client_reset, stop_by::client, ECONNRESET);
    return;
  }
  if (first_ == stop_by::upstream && upstream_end_ == side_end::rst) {
    set_stop(stop_phase::stream, stop_reason::upstream_reset, stop_by::upstream, ECONNRESET);
    return;
  }
  if (client_end_ == side_end::fin && upstream_end_ == side_end::fin &&
      rec_.bytes.from_client > 0) {
    set_stop(stop_phase::stream, stop_reason::completed,
             first_ == stop_by::upstream ? stop_by::upstream : stop_by::client);
  } else if (first_ == stop_by::client) {
    set_stop(stop_phase::stream, stop_reason::client_closed, stop_by::client);
  } else {
    set_stop(stop_phase::stream, stop_reason::upstream_closed, stop_by::upstream);
  }
  rec_.ok = true;
}

void connection::close_sockets() {
  std::error_code ignored;
  if (rst_client_) {
    reset_on_close(client_);
  }
  if (rst_upstream_) {
    reset_on_close(upstream_);
  }
  client_.close(ignored);
  upstream_.close(ignored);
}

void connection::finish() {
  rec_.duration_us = since_accept_us();
  rec_.close.first = first_;
  rec_.close.client = client_end_ == side_end::none ? side_end::open : client_end_;
  rec_.close.upstream = upstream_end_;
  if (!rec_.client_first) {
    rec_.client_first = first_flight_obs{};
  }
  rec_.hint = hint_for(rec_);
  l_.sink->push(std::move(rec_));
}

asio::awaitable<void> connection::run() {
  co_await asio::this_coro::throw_if_cancelled(false);
  start_record();
  const auto& cfg = l_.cfg;
  const host_port* target = cfg.upstream ? &*cfg.upstream : nullptr;
  const route_config* route = nullptr;

  // inspect + route: SNI routes need the whole ClientHello before we know where to connect.
  if (!l_.routes.empty()) {
    auto r = co_await (read_client_flight(false) || watch(accepted_ + cfg.limits.peek));
    std::optional<stop_reason> failed;
    stop_by by = stop_by::client;
    if (r.index() == 1) {
      if (std::get<1>(r) == watch_fire::shutdown) {
        client_end_ = side_end::proxy;
        first_ = stop_by::proxy;
        set_stop(stop_phase::stream, stop_reason::proxy_shutdown, stop_by::proxy);
        close_sockets();
        finish();
        co_return;
      }
      (void)inspect_client_flight({cflight_.buf.get(), cflight_.len}, cflight_.reads, true, rec_);
      client_end_ = side_end::timeout;
      first_ = stop_by::proxy;
      failed = rec_.bytes.from_client == 0 ? stop_reason::client_silent
                                           : stop_reason::hello_incomplete;
    } else {
      switch (std::get<0>(r)) {
        case peek_end::eof:
          failed = stop_reason::client_closed;
          first_ = stop_by::client;
          break;
        case peek_end::reset:
        case peek_end::error:
          failed = stop_reason::client_reset;
          first_ = stop_by::client;
          break;
        case peek_end::cancelled:
        case peek_end::decided:
          if (ccheck_.verdict == client_verdict::malformed) {
            failed = stop_reason::hello_malformed;
          } else if (ccheck_.verdict == client_verdict::too_large ||
                     (ccheck_.tls && !ccheck_.hello_complete)) {
            failed = stop_reason::hello_too_large;
          }
          break;
      }
      if (failed && first_ != stop_by::client) {
        first_ = stop_by::proxy;
        client_end_ = side_end::proxy;
      }
    }
    if (failed) {
      set_stop(stop_phase::inspect, *failed, by, *failed == stop_reason::client_reset ? err_ : 0);
      close_sockets();
      finish();
      co_return;
    }
    if (ccheck_.hello_complete && rec_.tls && rec_.tls->sni) {
      route = l_.routes.match(*rec_.tls->sni);
    }
    if (route != nullptr) {
      target = &route->upstream;
      rec_.route = route->name;
    } else if (target == nullptr) {
      client_end_ = side_end::proxy;
      first_ = stop_by::proxy;
      set_stop(stop_phase::route, stop_reason::no_route, stop_by::proxy);
      close_sockets();
      finish();
      co_return;
    }
  }

  // connect: with a single upstream, at once, while the client's first flight is read (a
  // server-speaks-first protocol must get its greeting through).
  rec_.upstream = upstream_value{route != nullptr ? route->name : "default", target->text, {}, 0, 0};
  auto c = co_await (connect_upstream(*target) || watch(steady::now() + cfg.limits.connect) ||
                     read_client_flight(true));
  std::optional<stop_reason> connect_failed;
  stop_by connect_by = stop_by::upstream;
  int connect_err = 0;
  bool reset_client = false;
  if (c.index() == 0) {
    const auto& cr = std::get<0>(c);
    connect_err = errno_of(cr.ec);
    if (cr.kind == connect_kind::resolve_failed) {
      connect_failed = stop_reason::upstream_resolve_failed;
      connect_by = stop_by::proxy;
      connect_err = 0;
    } else if (cr.kind != connect_kind::ok) {
      if (connect_err == ECONNREFUSED) {
        connect_failed = stop_reason::upstream_refused;
        reset_client = true;
      } else if (connect_err == EHOSTUNREACH || connect_err == ENETUNREACH) {
        connect_failed = stop_reason::upstream_unreachable;
        reset_client = true;
      } else if (connect_err == ETIMEDOUT) {
        connect_failed = stop_reason::upstream_timeout;
      } else {
        connect_failed = stop_reason::upstream_error;
        connect_by = stop_by::proxy;
      }
    }
  } else if (c.index() == 1) {
    if (std::get<1>(c) == watch_fire::shutdown) {
      client_end_ = side_end::proxy;
      first_ = stop_by::proxy;
      set_stop(stop_phase::stream, stop_reason::proxy_shutdown, stop_by::proxy);
      close_sockets();
      finish();
      co_return;
    }
    connect_failed = stop_reason::upstream_timeout;
    connect_err = ETIMEDOUT;
  } else {
    // The client closed or reset while we were connecting.
    first_ = stop_by::client;
    if (client_end_ == side_end::none) {
      client_end_ = side_end::fin;
    }
    set_stop(stop_phase::connect, stop_reason::client_gave_up, stop_by::client,
             client_end_ == side_end::rst ? ECONNRESET : 0);
    close_sockets();
    finish();
    co_return;
  }
  if (connect_failed) {
    // Still learn what the client wanted (SNI, protocol) before ending it, bounded by the peek
    // timeout, then end it the way the failure would have.
    if (!cflight_.done && client_end_ == side_end::none) {
      co_await (read_client_flight(false) || watch(accepted_ + cfg.limits.peek));
    }
    if (cflight_.len > 0 && !rec_.client_first) {
      (void)inspect_client_flight({cflight_.buf.get(), cflight_.len}, cflight_.reads, true, rec_);
    }
    first_ = connect_by == stop_by::upstream ? stop_by::upstream : stop_by::proxy;
    if (client_end_ == side_end::none) {
      client_end_ = side_end::proxy;
      rst_client_ = reset_client;
    }
    upstream_end_ = side_end::never;
    set_stop(stop_phase::connect, *connect_failed, connect_by, connect_err);
    close_sockets();
    finish();
    co_return;
  }

  // first reply + stream.
  upstream_open_ = true;
  upstream_end_ = side_end::none;
  tune(upstream_);
  rec_.timing.upstream_connected = since_accept_us();
  std::error_code ec;
  const auto rep = upstream_.remote_endpoint(ec);
  if (!ec) {
    const auto v = to_value(rep);
    rec_.upstream->ip = v.ip;
    rec_.upstream->port = v.port;
  }
  const auto lep = upstream_.local_endpoint(ec);
  if (!ec) {
    rec_.upstream->local_port = lep.port();
  }
  rec_.upstream_first = first_flight_obs{};
  last_activity_ = steady::now();
  // The two directions run as their own coroutines and this one is their watchdog. (Not
  // `(relay && relay) || watchdog`: the operators' frames and groups would stay allocated
  // for the whole stream, several KB per idle connection.)
  relays_left_ = 2;
  // (The executor comes from the socket, not from `co_await this_coro::executor`: GCC 12
  // mishandles that const local across the later suspensions of this long coroutine.)
  asio::co_spawn(client_.get_executor(), relay(dir::c2u),
                 [this](const std::exception_ptr&) { relay_done(); });
  asio::co_spawn(client_.get_executor(), relay(dir::u2c),
                 [this](const std::exception_ptr&) { relay_done(); });
  const std::optional<watch_fire> fired = co_await watch_stream();
  if (upstream_end_ == side_end::none) {
    upstream_end_ = side_end::open;
  }
  if (client_end_ == side_end::none) {
    client_end_ = side_end::open;
  }
  classify_after_relay(fired);
  close_sockets();
  finish();
}

}  // namespace linesman::proxy
