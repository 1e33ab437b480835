// The first-flight phase of proxy/connection.hpp: reading the client's first flight into its
// bounded buffer, inspecting it as it grows, and routing on the ClientHello.
//
// A read that completes after the race it runs in was decided (awaitable operator ||) still
// counts: its bytes, its FIN or its reset is recorded in the facts before the coroutine returns,
// so a client that resets just as the upstream connect completes is never lost.
#include "proxy/connection.hpp"
#include "proxy/connection_detail.hpp"
#include "tls/verdict.hpp"

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <asio/experimental/awaitable_operators.hpp>

namespace linesman::proxy {
namespace {

using detail::cancelled;
using detail::steady;

// kArrivalPause: after a failed connect, how long a pause in the client's first flight ends the
// wait for the rest of it (a flight split in segments arrives with sub-millisecond gaps on a
// LAN; a client waiting for a banner sends nothing at all).
constexpr auto kArrivalPause = std::chrono::milliseconds(75);

}  // namespace

bool connection::client_spoke_tls() const {
  // Only a whole ClientHello (or one too large to inspect) counts: a single 0x16 or 0x80 byte
  // merely starts like TLS, and an echo of it is not an upstream_not_tls.
  return tls::client_sent_tls(client_check_.hello_complete,
                              client_check_.verdict == client_verdict::too_large);
}

void connection::inspect_client(bool final) {
  auto& f = src(dir::c2u).first;
  const bool was_complete = client_check_.hello_complete;
  client_check_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, final, record_);
  if (client_check_.hello_complete && !was_complete) {
    record_.timing.hello_complete = since_accept_us();
    if (live_) {
      live_->pq_key_share.store(record_.tls && record_.tls->pq_key_share(),
                                std::memory_order_relaxed);
    }
    publish_live_strings();  // the SNI shows in the live view as soon as it is known
  }
  f.done = final || client_check_.verdict != client_verdict::need_more;
}

void connection::take_client_bytes(std::size_t n) {
  auto& f = src(dir::c2u).first;
  on_bytes(dir::c2u, n);
  record_bytes(dir::c2u, f.buf.get() + f.len, n);
  f.len += n;
  ++f.reads;
  inspect_client(f.len == kFlightBufferBytes);
}

connection::flight_end connection::note_client_read_error(const std::error_code& ec) {
  inspect_client(true);
  const bool reset = ec == asio::error::connection_reset;
  record_end(dir::c2u, reset);
  if (!facts_.first_close) {
    facts_.first_close = stop_by::client;
  }
  if (ec == asio::error::eof) {
    facts_.client_end = side_end::fin;
    return flight_end::eof;
  }
  facts_.err = facts_.err != 0 ? facts_.err : detail::errno_of(ec);
  facts_.client_end = reset ? side_end::rst : side_end::error;
  return reset ? flight_end::reset : flight_end::error;
}

std::optional<connection::flight_end> connection::read_now() {
  // MSG_DONTWAIT: whatever is there (bytes, FIN, reset) is taken and recorded now, never waited
  // for. The read goes to the worker's scratch and only its bytes are kept, so the flight buffer
  // is the size of what the client sent (proxy/flight_buffer.hpp): a client that has said
  // nothing yet costs no buffer, one dribbling its hello 256 bytes, not 16.7 KB.
  auto& f = src(dir::c2u).first;
  if (f.done || f.len == kFlightBufferBytes) {
    return flight_end::decided;
  }
  std::size_t n = 0;
  const auto ec = recv_flight(dir::c2u, n);
  if (!ec) {
    return std::nullopt;
  }
  if (n > 0) {
    take_client_bytes(n);
    return flight_end::decided;
  }
  return note_client_read_error(*ec);
}

std::optional<std::error_code> connection::recv_flight(dir d, std::size_t& n) {
  flight& f = src(d).first;
  const auto scratch = detail::flight_scratch();
  const std::size_t want = kFlightBufferBytes - f.len;
  const ssize_t got = ::recv(src(d).socket.native_handle(), scratch.data(), want, MSG_DONTWAIT);
  const int err = errno;
  src(d).drained = got >= 0 && static_cast<std::size_t>(got) < want;
  if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)) {
    return std::nullopt;
  }
  n = got > 0 ? static_cast<std::size_t>(got) : 0;
  f.buf.append(f.len, {scratch.data(), n});
  if (got > 0) {
    return std::error_code();
  }
  return got == 0 ? std::error_code(asio::error::eof)
                  : std::error_code(err, asio::error::get_system_category());
}

asio::awaitable<connection::flight_end> connection::read_client_step(bool look_first) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto& f = src(dir::c2u).first;
  if (look_first && !f.buf && f.reads == 0) {
    // The client's first bytes are often there by the time we look (a client sends right after
    // its handshake): read them now and skip the wait (an epoll_ctl and a round through
    // epoll_wait).
    if (const auto e = read_now()) {
      co_return (*e == flight_end::decided && co_await cancelled()) ? flight_end::cancelled : *e;
    }
  }
  // Wait for readability, then read what came (read_now): no buffer grows while the client keeps
  // us waiting. A wake-up with nothing to read (EAGAIN) waits again; the phase's deadline
  // cancels the wait, which bounds the loop in time.
  for (;;) {
    auto [ec] = co_await client().async_wait(asio::socket_base::wait_read, kTuple);
    if (ec) {
      co_return flight_end::cancelled;
    }
    if (watch_decided() || co_await cancelled()) {
      (void)read_now();
      co_return flight_end::cancelled;
    }
    if (const auto e = read_now()) {
      co_return (*e == flight_end::decided && co_await cancelled()) ? flight_end::cancelled : *e;
    }
  }
}

asio::awaitable<connection::flight_end> connection::read_client_flight(bool looked) {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Each step reads at least one byte into a bounded buffer, or ends: the loop is bounded.
  for (bool look_first = !looked; !src(dir::c2u).first.done; look_first = true) {
    if (watch_decided()) {
      co_return flight_end::cancelled;  // the deadline fired while no read was pending
    }
    const auto e = co_await read_client_step(look_first);
    if (e != flight_end::decided) {
      co_return e;
    }
  }
  co_return flight_end::decided;
}

void connection::watch_client_while_connecting(bool ready) {
  if (look_at_client(ready)) {
    arm_client_watch();
  }
}

bool connection::look_at_client(bool ready) {
  auto& f = src(dir::c2u).first;
  if (!f.done) {
    // Take what arrived (the client's first bytes are often there before we look).
    const auto e = read_now();
    if (e == flight_end::eof && f.len > 0) {
      return false;  // bytes then FIN while connecting: a half-close, the relay passes it on
    }
    if (e && *e != flight_end::decided) {
      watch_->client_left = true;
      cancel_watched();
      return false;
    }
  } else if (ready) {
    // The flight is complete: watch for the client giving up, without consuming what it sends.
    std::uint8_t probe = 0;
    const ssize_t n = ::recv(client().native_handle(), &probe, 1, MSG_PEEK | MSG_DONTWAIT);
    const bool again = n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
    if (n >= 0 && !(n == 0 && f.len == 0)) {
      return false;  // more data (or a FIN after data): it stays queued until the relay reads it
    }
    if (!again) {
      note_client_read_error(n == 0 ? std::error_code(asio::error::eof)
                                    : std::error_code(errno, asio::error::get_system_category()));
      watch_->client_left = true;
      cancel_watched();
      return false;
    }
  }
  return facts_.client_end == side_end::none;
}

void connection::arm_client_watch() {
  client().async_wait(asio::socket_base::wait_read,
                      [w = watch_, round = watch_->round](const std::error_code& ec) {
                        if (w->round == round && !ec) {
                          w->conn->watch_client_while_connecting(true);
                        }
                      });
}

asio::awaitable<connection::flight_end> connection::read_client_while_arriving() {
  co_await asio::this_coro::throw_if_cancelled(false);
  using namespace asio::experimental::awaitable_operators;
  auto& f = src(dir::c2u).first;
  const auto deadline = accepted_ + listener_.cfg.limits.peek;
  // Each round gets kArrivalPause for its read and reads at least one byte, or the loop ends.
  while (!f.done && facts_.client_end == side_end::none && steady::now() < deadline) {
    const std::size_t before = f.len;
    auto r =
        co_await (read_client_step() || watch(std::min(deadline, steady::now() + kArrivalPause)));
    if (r.index() == 1 || f.len == before) {
      break;
    }
  }
  co_return flight_end::decided;
}

asio::awaitable<connection::flight_end> connection::read_client_flight_watched(bool looked) {
  co_await asio::this_coro::throw_if_cancelled(false);
  begin_watch();
  watch_deadline(accepted_ + listener_.cfg.limits.peek);
  auto e = flight_end::cancelled;
  if (!watch_decided()) {  // (not in a ?: — GCC 12 miscompiles co_await inside one)
    e = co_await read_client_flight(looked);
  }
  const auto seen = end_watch();
  if (e == flight_end::cancelled) {
    facts_.fired = seen.fired;
  }
  co_return e;
}

asio::awaitable<std::optional<const route_config*>> connection::route_on_hello(
    const host_port* fallback) {
  // The whole hello is usually there by the time we look: read it now, and a flight that this
  // read decides needs no deadline, no wait and no coroutine below this one.
  auto e = flight_end::decided;
  if (!shutdown_requested_) {
    e = read_now().value_or(flight_end::decided);
  }
  if (shutdown_requested_ || !src(dir::c2u).first.done) {
    // (Not there yet: the slow path starts with a wait, not with the same read again.)
    e = co_await read_client_flight_watched(!shutdown_requested_);
  }
  if (e == flight_end::cancelled) {
    if (facts_.fired == timer_fire::deadline) {
      inspect_client(true);
      facts_.client_end = side_end::timeout;
      facts_.first_close = stop_by::proxy;
    }
    end_before_stream(stop_phase::inspect);
    co_return std::nullopt;
  }
  const bool unusable = client_check_.verdict == client_verdict::malformed ||
                        client_check_.verdict == client_verdict::too_large ||
                        (client_check_.tls && !client_check_.hello_complete);
  if (e == flight_end::eof || e == flight_end::reset || e == flight_end::error || unusable) {
    if (facts_.client_end == side_end::none) {
      facts_.client_end = side_end::proxy;
      facts_.first_close = stop_by::proxy;
    }
    end_before_stream(stop_phase::inspect);
    co_return std::nullopt;
  }
  const route_config* route = nullptr;
  if (client_check_.hello_complete && record_.tls && record_.tls->sni) {
    route = listener_.routes.match(*record_.tls->sni);
  }
  if (route != nullptr) {
    record_.route = route->name;
    co_return route;
  }
  if (fallback != nullptr) {
    co_return nullptr;
  }
  facts_.client_end = side_end::proxy;
  facts_.first_close = stop_by::proxy;
  end_before_stream(stop_phase::route);
  co_return std::nullopt;
}

}  // namespace linesman::proxy
