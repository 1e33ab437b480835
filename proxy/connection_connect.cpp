// The connect phase of proxy/connection.hpp: connect upstream (while the client's first flight
// keeps arriving), and when it fails, end the client the way the failure would have ended it,
// as fast as it would have without linesman in between.
#include "proxy/connection.hpp"
#include "proxy/connection_detail.hpp"
#include "proxy/fresh_socket.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

namespace linesman::proxy {
namespace {

using detail::errno_of;
using detail::steady;

connect_outcome outcome_of(const std::error_code& ec) {
  switch (errno_of(ec)) {
    case ECONNREFUSED:
      return connect_outcome::refused;
    case EHOSTUNREACH:
    case ENETUNREACH:
      return connect_outcome::unreachable;
    case ETIMEDOUT:
      return connect_outcome::timed_out;
    default:
      return connect_outcome::failed;
  }
}

}  // namespace

connection::connect_result connection::connect_error(int fd, const asio::ip::tcp::endpoint& peer) {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
    err = errno;
  }
  if (err != 0) {
    const std::error_code cec(err, asio::error::get_system_category());
    return connect_result{outcome_of(cec), cec, {}};
  }
  return connect_result{connect_outcome::connected, {}, peer};
}

std::optional<connection::connect_result> connection::connect_by_sending(
    int fd, const asio::ip::tcp::endpoint& peer) {
  flight& f = src(dir::c2u).first;
  if (f.len == f.forwarded) {
    return std::nullopt;
  }
  // A send answers what poll(2) would: a connected socket takes the bytes, one still connecting
  // says EAGAIN, a refused or unreachable one returns its pending error (and clears it: the
  // result carries it from here).
  const ssize_t n =
      ::send(fd, f.buf.get() + f.forwarded, f.len - f.forwarded, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) {
    note_forwarded(dir::c2u, static_cast<std::size_t>(n));  // the stream phase sends the rest
    return connect_result{connect_outcome::connected, {}, peer};
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK) {
    return connect_result{connect_outcome::pending, {}, peer};
  }
  const std::error_code ec(errno, asio::error::get_system_category());
  return connect_result{outcome_of(ec), ec, {}};
}

std::optional<connection::connect_result> connection::connect_now(const host_port& target,
                                                                  bool send_first) {
  std::error_code aec;
  const auto ip = asio::ip::make_address(target.host, aec);
  if (aec) {
    return std::nullopt;
  }
  // A numeric address needs no resolver (asio's resolves on a helper thread: two thread hops and
  // a getaddrinfo per connection). Opened non-blocking (proxy/fresh_socket.hpp: no ioctl).
  const asio::ip::tcp::endpoint peer(ip, target.port);
  auto& up = upstream();
  if (const auto ec = open_fresh(up, peer.protocol())) {
    return connect_result{outcome_of(ec), ec, {}};
  }
  tune_stream(up);
  // connect(2) by hand rather than async_connect: the kernel picks our local port inside this
  // call, so the loop guard learns it before the listener we may be looping into can accept.
  const int fd = up.native_handle();
  if (::connect(fd, peer.data(), static_cast<socklen_t>(peer.size())) != 0 &&
      errno != EINPROGRESS) {
    const std::error_code cec(errno, asio::error::get_system_category());
    return connect_result{outcome_of(cec), cec, {}};
  }
  note_local_endpoint(peer);
  // On loopback (and a local bridge) the handshake, or the refusal, is over before connect(2)
  // returns. The client's first bytes, sent now, tell which; without them one poll(2) that does
  // not wait tells, where a reactor wait costs an epoll_ctl, an epoll_wait and a getsockopt.
  // Nothing ready: the caller waits (connect_numeric).
  if (send_first) {
    if (auto sent = connect_by_sending(fd, peer)) {
      return sent;
    }
  }
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, 0) != 1 || p.revents == 0) {
    return connect_result{connect_outcome::pending, {}, peer};
  }
  if ((p.revents & (POLLERR | POLLHUP)) == 0) {
    return connect_result{connect_outcome::connected, {}, peer};
  }
  return connect_error(fd, peer);
}

asio::awaitable<connection::connect_result> connection::connect_waiting(
    const host_port& target, std::optional<connect_result> started, bool watch_client) {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Only a connect that is really pending gets a deadline and a watch on the client.
  watch_deadline(steady::now() + listener_.cfg.limits.connect);
  if (watch_client) {
    arm_client_watch();
  }
  if (watch_decided()) {
    co_return connect_result{};
  }
  if (started) {
    co_return co_await connect_numeric(started->peer);
  }
  co_return co_await connect_upstream(target);
}

asio::awaitable<connection::connect_result> connection::connect_upstream(const host_port& target) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto& up = upstream();
  asio::ip::tcp::resolver resolver(up.get_executor());
  watch_->resolver = &resolver;  // so the phase's deadline or the client leaving can cancel it
  // Resolved at connect time, every time: a container address may change between connections.
  auto [rec, results] = co_await resolver.async_resolve(
      target.host, std::to_string(target.port), asio::ip::resolver_base::numeric_service, kTuple);
  watch_->resolver = nullptr;
  if (rec == asio::error::operation_aborted || watch_decided()) {
    co_return connect_result{connect_outcome::pending, rec, {}};
  }
  if (rec || results.empty()) {
    co_return connect_result{connect_outcome::resolve_failed, rec, {}};
  }
  watch_->close_upstream = true;
  auto [cec, ep] = co_await asio::async_connect(up, results, kTuple);
  watch_->close_upstream = false;
  if (!cec && watch_decided()) {
    co_return connect_result{connect_outcome::pending, cec, {}};  // (the watch closed the socket)
  }
  if (cec) {
    const auto o =
        cec == asio::error::operation_aborted ? connect_outcome::pending : outcome_of(cec);
    co_return connect_result{o, cec, {}};
  }
  tune_stream(up);  // (async_connect over a range opens the socket itself: tuned afterwards)
  co_return connect_result{connect_outcome::connected, {}, ep};
}

asio::awaitable<connection::connect_result> connection::connect_numeric(
    const asio::ip::tcp::endpoint& peer) {
  co_await asio::this_coro::throw_if_cancelled(false);
  auto [wec] = co_await upstream().async_wait(asio::socket_base::wait_write, kTuple);
  if (wec) {
    co_return connect_result{connect_outcome::pending, wec, {}};
  }
  co_return connect_error(upstream().native_handle(), peer);
}

void connection::note_local_endpoint(const asio::ip::tcp::endpoint& remote) {
  std::error_code ec;
  const auto local = upstream().local_endpoint(ec);
  if (ec || local.port() == 0) {
    return;
  }
  record_.upstream->local_port = local.port();
  if (worker_.loops != nullptr) {
    worker_.loops->add(local, remote, chain_, loop_entry_);  // so a loop back is recognised
  }
}

void connection::note_connect_result(const connect_result& r) {
  facts_.connect = r.outcome;
  facts_.connect_err = r.outcome == connect_outcome::resolve_failed ? 0 : errno_of(r.ec);
}

void connection::note_connected(const connect_result& r) {
  facts_.upstream_end = side_end::none;
  record_.timing.upstream_connected = since_accept_us();
  if (listener_.stats != nullptr) {
    listener_.stats->connect_seconds.observe_us(record_.timing.upstream_connected -
                                                connect_start_us_);
  }
  const auto v = detail::to_value(r.peer);  // the address connect() reached: no getpeername
  record_.upstream->ip = v.ip;
  record_.upstream->port = v.port;
  if (record_.upstream->local_port == 0) {
    note_local_endpoint(r.peer);  // (connected through the resolver's endpoint list)
  }
  record_.upstream_first = first_flight_obs{};
  enter_phase(live_phase::first_reply);
}

asio::awaitable<void> connection::end_failed_connect() {
  // Still learn what the client wanted (SNI, protocol) before ending it, but only while its
  // first flight is arriving: a refused port must reach the client at once, as it would without
  // linesman (a client waiting for a banner sends nothing, and must not wait a peek timeout).
  auto& f = src(dir::c2u).first;
  if (!f.done && facts_.client_end == side_end::none) {
    co_await read_client_while_arriving();
  }
  if (f.len > 0 && !f.done) {
    inspect_client(true);
  }
  const auto o = facts_.connect;
  facts_.first_close = o == connect_outcome::resolve_failed || o == connect_outcome::failed
                           ? stop_by::proxy
                           : stop_by::upstream;
  if (facts_.client_end == side_end::none) {
    facts_.client_end = side_end::proxy;
    // The refusal reaches the client as a refusal would: a reset.
    src(dir::c2u).reset_on_close =
        o == connect_outcome::refused || o == connect_outcome::unreachable;
  }
  facts_.upstream_end = side_end::never;
  end_before_stream(stop_phase::connect);
}

void connection::end_if_client_left() {
  // The client reset (or failed) while we connected: pass the reset on and end now, instead of
  // starting a stream phase that has nothing left to read from the client.
  facts_.upstream_end = side_end::proxy;
  src(dir::u2c).reset_on_close = true;
  end_before_stream(stop_phase::first_reply);
}

asio::awaitable<bool> connection::connect_phase(const host_port& target,
                                                const route_config* route) {
  const auto& cfg = listener_.cfg;
  record_.upstream = upstream_value{
      route != nullptr ? route->name : (cfg.transparent ? "original_dst" : "default"),
      target.text,
      {},
      0,
      0};
  connect_start_us_ = since_accept_us();
  facts_.connect = connect_outcome::pending;
  enter_phase(live_phase::connect);
  // With a single upstream, connect at once while the client's first flight is read: a
  // server-speaks-first protocol (SSH, SMTP, MySQL) must get its greeting through.
  begin_watch();
  const bool watch_client = look_at_client(false);
  connect_result c;
  // (A shutdown already requested goes the waiting way, whose watch notes it and connects nothing.)
  proxy_out_version_ = route != nullptr && route->proxy_out ? *route->proxy_out : cfg.pp.out;
  const bool send_first = !fault_ && !proxy_header_accepted_ && proxy_out_version_ == 0;
  auto now =
      watch_decided() || shutdown_requested_ ? std::nullopt : connect_now(target, send_first);
  if (now && now->outcome != connect_outcome::pending) {
    c = *now;  // decided at once: no deadline, no wait beside it
  } else if (!watch_decided()) {
    c = co_await connect_waiting(target, now, watch_client);
  }
  const auto seen = end_watch();
  if (seen.fired == timer_fire::shutdown) {
    facts_.fired = timer_fire::shutdown;
    end_before_stream(stop_phase::connect);
    co_return false;
  }
  const bool connected = c.outcome == connect_outcome::connected;
  if (seen.client_left && !connected) {
    // The client closed or reset while we were connecting.
    facts_.first_close = stop_by::client;
    if (facts_.client_end == side_end::none) {
      facts_.client_end = side_end::fin;
    }
    end_before_stream(stop_phase::connect);
    co_return false;
  }
  if (seen.fired == timer_fire::deadline && !connected) {
    facts_.connect = connect_outcome::timed_out;
    facts_.connect_err = ETIMEDOUT;
  } else {
    note_connect_result(c);
  }
  if (facts_.connect != connect_outcome::connected) {
    co_await end_failed_connect();
    co_return false;
  }
  note_connected(c);
  if (proxy_header_accepted_ || proxy_out_version_ != 0) {
    co_await send_proxy_header();
  }
  if (facts_.client_end == side_end::rst || facts_.client_end == side_end::error) {
    end_if_client_left();
    co_return false;
  }
  co_return true;
}

}  // namespace linesman::proxy
