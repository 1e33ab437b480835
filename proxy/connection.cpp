#include "proxy/connection.hpp"

#include "proxy/hint.hpp"
#include "tls/proxy_header.hpp"
#include "tls/verdict.hpp"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

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
#define LINESMAN_RETURN_IF_CANCELLED(value)                             \
  do {                                                                  \
    const auto lm_state = co_await asio::this_coro::cancellation_state; \
    if (cancelled_state(lm_state.cancelled())) {                        \
      co_return value;                                                  \
    }                                                                   \
  } while (false)

// pp_endpoint_value: a PROXY header endpoint as the record shows it.
endpoint_value pp_endpoint_value(const tls::proxy_endpoint& ep) {
  endpoint_value v;
  std::array<char, INET6_ADDRSTRLEN> text{};
  const int af = ep.addr_len == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, ep.addr.data(), text.data(), static_cast<socklen_t>(text.size())) != nullptr) {
    v.ip = text.data();
  }
  v.port = ep.port;
  return v;
}

// to_pp_endpoint: a recorded endpoint back into PROXY header form; addr_len 0 if unparsable.
tls::proxy_endpoint to_pp_endpoint(const endpoint_value& v) {
  tls::proxy_endpoint ep;
  if (inet_pton(AF_INET, v.ip.c_str(), ep.addr.data()) == 1) {
    ep.addr_len = 4;
  } else if (inet_pton(AF_INET6, v.ip.c_str(), ep.addr.data()) == 1) {
    ep.addr_len = 16;
  }
  ep.port = v.port;
  return ep;
}

// tlv_text: a TLV value as text when printable, else as lowercase hex.
std::string tlv_text(std::span<const std::uint8_t> v) {
  bool printable = true;
  for (const auto b : v) {
    printable = printable && b >= 0x20 && b < 0x7f;
  }
  std::string out;
  if (printable) {
    out.assign(v.begin(), v.end());
    return out;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (const auto b : v) {
    out += kHex[b >> 4];
    out += kHex[b & 0x0f];
  }
  return out;
}

// pp_tlvs_json: the v2 TLVs by name (first occurrence of each; unknown types listed by number).
nlohmann::json pp_tlvs_json(const tls::proxy_header& h) {
  nlohmann::json t = nlohmann::json::object();
  if (!h.alpn.empty()) {
    t["alpn"] = tlv_text(h.alpn);
  }
  if (!h.authority.empty()) {
    t["authority"] = tlv_text(h.authority);
  }
  if (!h.unique_id.empty()) {
    t["unique_id"] = tlv_text(h.unique_id);
  }
  if (!h.netns.empty()) {
    t["netns"] = tlv_text(h.netns);
  }
  if (h.has_crc32c) {
    t["crc32c"] = h.crc32c_ok ? "ok" : "mismatch";
  }
  if (h.ssl.present) {
    nlohmann::json ssl{{"client", h.ssl.client}, {"verify", h.ssl.verify}};
    if (!h.ssl.version.empty()) {
      ssl["version"] = tlv_text(h.ssl.version);
    }
    if (!h.ssl.cn.empty()) {
      ssl["cn"] = tlv_text(h.ssl.cn);
    }
    if (!h.ssl.cipher.empty()) {
      ssl["cipher"] = tlv_text(h.ssl.cipher);
    }
    t["ssl"] = std::move(ssl);
  }
  nlohmann::json other = nlohmann::json::array();
  tls::byte_reader block(h.tlvs);
  tls::proxy_tlv tlv;
  for (int i = 0; i < 4096 && tls::next_proxy_tlv(block, tlv); ++i) {
    switch (tlv.type) {
      case tls::kPp2TypeAlpn:
      case tls::kPp2TypeAuthority:
      case tls::kPp2TypeCrc32c:
      case tls::kPp2TypeNoop:
      case tls::kPp2TypeUniqueId:
      case tls::kPp2TypeSsl:
      case tls::kPp2TypeNetns:
        break;
      default:
        other.push_back(tlv.type);
    }
  }
  if (!other.empty()) {
    t["other_types"] = std::move(other);
  }
  return t;
}

// original_dst: the destination the client dialled before a REDIRECT rewrote it (conntrack's
// original tuple). nullopt when the socket has none (not redirected, no conntrack).
std::optional<endpoint_value> original_dst(int fd, bool v6) {
  endpoint_value v;
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (v6) {
    sockaddr_in6 sa{};
    socklen_t len = sizeof(sa);
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0) {
      return std::nullopt;
    }
    if (inet_ntop(AF_INET6, &sa.sin6_addr, text.data(), text.size()) == nullptr) {
      return std::nullopt;
    }
    v.port = ntohs(sa.sin6_port);
  } else {
    sockaddr_in sa{};
    socklen_t len = sizeof(sa);
    if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0) {
      return std::nullopt;
    }
    if (inet_ntop(AF_INET, &sa.sin_addr, text.data(), text.size()) == nullptr) {
      return std::nullopt;
    }
    v.port = ntohs(sa.sin_port);
  }
  v.ip = text.data();
  return v;
}

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
  live_.id = rec_.id;
  live_.listener = l_.stats;
}

connection::~connection() {
  if (w_.registry != nullptr) {
    w_.registry->unlink(live_);
  }
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
  if (l_.capture != nullptr && !l_.capture->stopped()) {
    // The capture shows the conversation as the client had it: client <-> linesman's listener,
    // its SYN stamped with the accept time.
    std::error_code rec_ec;
    const auto cep = client_.remote_endpoint(rec_ec);
    const auto lep = client_.local_endpoint(ec);
    if (!rec_ec && !ec) {
      std::string name;
      cap_ = l_.capture->start(rec_.id, cep, lep, name, rec_.ts);
      if (cap_) {
        rec_.capture = std::move(name);
      }
    }
  }
  tune(client_);
  live_.client = rec_.client.ip.find(':') != std::string::npos
                     ? "[" + rec_.client.ip + "]:" + std::to_string(rec_.client.port)
                     : rec_.client.ip + ":" + std::to_string(rec_.client.port);
  live_.accepted_wall = rec_.ts;
  live_.accepted_ns.store(steady_ns(), std::memory_order_relaxed);
  live_.from_client = &rec_.bytes.from_client;
  live_.from_upstream = &rec_.bytes.from_upstream;
  set_phase(live_, live_phase::inspect);
  if (w_.registry != nullptr) {
    w_.registry->link(live_);
  }
  started_ = true;
}

void connection::enter_phase(live_phase p) {
  if (w_.registry != nullptr) {
    const std::string* sni = nullptr;
    if (live_.sni.empty() && rec_.tls && rec_.tls->sni) {
      sni = &*rec_.tls->sni;  // read on this thread; written under the lock below
    }
    const std::string* route = rec_.route ? &*rec_.route : nullptr;
    const std::string* up = rec_.upstream ? &rec_.upstream->address : nullptr;
    w_.registry->set_strings(live_, sni, route, up);
  }
  set_phase(live_, p);
}

void connection::account_end() {
  listener_stats* st = l_.stats;
  const auto account = [&] {
    if (st == nullptr) {
      return;
    }
    const auto p = static_cast<std::size_t>(rec_.stop.phase);
    const auto r = static_cast<std::size_t>(rec_.stop.reason);
    if (p < kStopPhases && r < kStopReasons) {
      st->ended[p][r].fetch_add(1, std::memory_order_relaxed);
    }
    st->closed_from_client.fetch_add(rec_.bytes.from_client, std::memory_order_relaxed);
    st->closed_from_upstream.fetch_add(rec_.bytes.from_upstream, std::memory_order_relaxed);
    peek_outcome o = peek_outcome::incomplete;
    if (rec_.bytes.from_client == 0) {
      o = peek_outcome::none;
    } else if (ccheck_.hello_complete) {
      o = peek_outcome::complete;
    } else if (ccheck_.verdict == client_verdict::malformed) {
      o = peek_outcome::malformed;
    } else if (ccheck_.verdict == client_verdict::too_large) {
      o = peek_outcome::too_large;
    } else if (!ccheck_.tls && ccheck_.verdict == client_verdict::done) {
      o = peek_outcome::not_tls;
    }
    st->peek[static_cast<std::size_t>(o)].fetch_add(1, std::memory_order_relaxed);
  };
  if (w_.registry != nullptr) {
    // Counted and unlinked in one step: a scrape sees this connection either open or ended.
    w_.registry->unlink(live_, account);
  } else {
    account();
  }
}

void connection::publish_open_record() {
  if (!started_ || live_.linked == false) {
    return;
  }
  record r = rec_;
  r.open_state = true;
  r.duration_us = since_accept_us();
  r.close.first.reset();
  r.close.client = side_end::open;
  r.close.upstream = upstream_open_ ? side_end::open : side_end::never;
  r.ok = false;
  r.stop.errno_name.clear();
  // stop: the phase it waits in, with the reason its timer would record if it fired now.
  switch (static_cast<live_phase>(live_.phase.load(std::memory_order_relaxed))) {
    case live_phase::inspect:
      r.stop.phase = stop_phase::inspect;
      r.stop.reason =
          rec_.bytes.from_client == 0 ? stop_reason::client_silent : stop_reason::hello_incomplete;
      r.stop.by = stop_by::client;
      break;
    case live_phase::connect:
      r.stop.phase = stop_phase::connect;
      r.stop.reason = stop_reason::upstream_timeout;
      r.stop.by = stop_by::upstream;
      break;
    case live_phase::first_reply:
      r.stop.phase = stop_phase::first_reply;
      r.stop.reason = stop_reason::upstream_silent;
      r.stop.by = stop_by::upstream;
      break;
    case live_phase::stream:
      r.stop.phase = stop_phase::stream;
      r.stop.reason = stop_reason::idle_timeout;
      r.stop.by = stop_by::proxy;
      break;
  }
  if (!r.client_first) {
    r.client_first = first_flight_obs{};
  }
  r.hint = hint_for(r);
  l_.sink->push(std::move(r));
}

void connection::cap_data(dir d, const std::uint8_t* p, std::size_t n) {
  if (cap_) {
    cap_->data(
        d == dir::c2u ? capture::direction::client_to_server : capture::direction::server_to_client,
        {p, n});
  }
}

void connection::cap_end(dir d, bool reset) {
  if (!cap_) {
    return;
  }
  const auto cd =
      d == dir::c2u ? capture::direction::client_to_server : capture::direction::server_to_client;
  if (reset) {
    cap_->rst(cd);
  } else {
    cap_->fin(cd);
  }
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
  return tls::client_sent_tls(ccheck_.hello_complete, ccheck_.verdict == client_verdict::too_large);
}

void connection::set_stop(stop_phase p, stop_reason r, stop_by by, int err) {
  rec_.stop.phase = p;
  rec_.stop.reason = r;
  rec_.stop.by = by;
  if (err != 0) {
    rec_.stop.errno_name = errno_name(err);
  }
}

void connection::inspect_client(flight& f, bool final) {
  const bool was_complete = ccheck_.hello_complete;
  ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, final, rec_);
  if (ccheck_.hello_complete && !was_complete) {
    rec_.timing.hello_complete = since_accept_us();
  }
  f.done = final || ccheck_.verdict != client_verdict::need_more;
}

void connection::on_client_bytes(std::size_t n) {
  if (rec_.timing.client_first_byte < 0) {
    rec_.timing.client_first_byte = since_accept_us();
  }
  bump_counter(rec_.bytes.from_client, n);
  last_activity_ = steady::now();
}

void connection::on_upstream_bytes(std::size_t n) {
  if (rec_.timing.upstream_first_byte < 0) {
    rec_.timing.upstream_first_byte = since_accept_us();
    if (l_.stats != nullptr && rec_.timing.upstream_connected >= 0) {
      l_.stats->first_reply_seconds.observe_us(rec_.timing.upstream_first_byte -
                                               rec_.timing.upstream_connected);
    }
    enter_phase(live_phase::stream);
  }
  bump_counter(rec_.bytes.from_upstream, n);
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

void connection::on_stream_watch() {
  if (relays_left_ == 0) {
    end_stream_phase();
    return;
  }
  // Woken by the deadline, by request_shutdown, or (never for a live relay) spuriously.
  if (!fired_) {
    const auto deadline = last_activity_ + l_.cfg.limits.idle;
    if (shutdown_ || steady::now() >= deadline) {
      fired_ = shutdown_ ? watch_fire::shutdown : watch_fire::deadline;
      stop_relays();
      watch_timer_.expires_at(steady::time_point::max());  // relay_done() wakes us
    } else {
      // last_activity_ moves on every transfer; the timer is only re-armed when it fires, so a
      // busy connection costs one wake-up per idle period, not one per chunk.
      watch_timer_.expires_at(deadline);
    }
  } else {
    watch_timer_.expires_at(steady::time_point::max());
  }
  watch_timer_.async_wait([this](const std::error_code&) { on_stream_watch(); });
}

void connection::end_stream_phase() {
  if (upstream_end_ == side_end::none) {
    upstream_end_ = side_end::open;
  }
  if (client_end_ == side_end::none) {
    client_end_ = side_end::open;
  }
  classify_after_relay(fired_);
  close_sockets();
  finish();
  // run() returned true, so nobody else owns this connection, and no operation of it is
  // pending: both relays are done and this was the timer's last handler.
  delete this;
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
          cap_data(dir::c2u, f.buf.get() + f.len, n);
          f.len += n;
          ++f.reads;
          inspect_client(f, f.len == kFlightBufferBytes);
        }
        co_return peek_end::cancelled;
      }
    }
    if (ec) {
      ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, true, rec_);
      f.done = true;
      cap_end(dir::c2u, ec == asio::error::connection_reset);
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
    cap_data(dir::c2u, f.buf.get() + f.len, n);
    f.len += n;
    ++f.reads;
    inspect_client(f, f.len == kFlightBufferBytes);
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
    // and a getaddrinfo per connection). Opened and tuned before connecting: asio would
    // otherwise set its own non-blocking mode first, and tune() set it again (one ioctl more).
    const asio::ip::tcp::endpoint peer{numeric, target.port};
    std::error_code oec;
    upstream_.open(peer.protocol(), oec);
    if (oec) {
      co_return connect_result{connect_kind::failed, oec, {}};
    }
    tune(upstream_);
    auto [cec] = co_await upstream_.async_connect(peer, kTuple);
    if (cec == asio::error::operation_aborted) {
      co_return connect_result{connect_kind::cancelled, cec, {}};
    }
    if (cec) {
      co_return connect_result{connect_kind::failed, cec, {}};
    }
    co_return connect_result{connect_kind::ok, {}, peer};
  }
  asio::ip::tcp::resolver resolver(client_.get_executor());
  // Resolved at connect time, every time: a container address may change between connections.
  auto [rec, results] = co_await resolver.async_resolve(
      target.host, std::to_string(target.port), asio::ip::resolver_base::numeric_service, kTuple);
  if (rec == asio::error::operation_aborted) {
    co_return connect_result{connect_kind::cancelled, rec, {}};
  }
  if (rec || results.empty()) {
    co_return connect_result{connect_kind::resolve_failed, rec, {}};
  }
  LINESMAN_RETURN_IF_CANCELLED((connect_result{connect_kind::cancelled, {}, {}}));
  auto [cec, ep] = co_await asio::async_connect(upstream_, results, kTuple);
  if (cec == asio::error::operation_aborted) {
    co_return connect_result{connect_kind::cancelled, cec, {}};
  }
  if (cec) {
    co_return connect_result{connect_kind::failed, cec, {}};
  }
  tune(upstream_);  // (async_connect over a range opens the socket itself: tuned afterwards)
  co_return connect_result{connect_kind::ok, {}, ep};
}

asio::awaitable<connection::peek_end> connection::read_proxy_header() {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Each read asks for at most what the header can still need (v1: one byte at a time after the
  // 12 that both signatures share; v2: up to the length its fixed part gives), so the client's
  // own bytes after the header stay in the socket for inspection. Every read adds at least one
  // byte and a header is at most 16 + 65535 bytes: the loop is bounded.
  pp_in_.reserve(tls::kProxyV1MaxLen);
  for (std::size_t i = 0; i <= tls::kProxyV2HeaderLen + 65535; ++i) {
    const std::size_t len = pp_in_.size();
    std::size_t want = 1;
    if (len < tls::kProxyV2Signature.size()) {
      want = tls::kProxyV2Signature.size() - len;
    } else if (pp_in_.front() != 'P' && len < tls::kProxyV2HeaderLen) {
      want = tls::kProxyV2HeaderLen - len;
    } else if (pp_in_.front() != 'P') {
      const std::size_t total =
          tls::kProxyV2HeaderLen + (std::size_t{pp_in_[14]} << 8u) + std::size_t{pp_in_[15]};
      want = total > len ? total - len : 1;
    }
    pp_in_.resize(len + want);
    auto [ec, n] =
        co_await client_.async_read_some(asio::buffer(pp_in_.data() + len, want), kTuple);
    pp_in_.resize(len + (ec ? 0 : n));
    if (!ec && n > 0) {
      on_client_bytes(n);
      cap_data(dir::c2u, pp_in_.data() + len, n);
    }
    if (ec == asio::error::operation_aborted) {
      co_return peek_end::cancelled;
    }
    if (ec == asio::error::eof) {
      client_end_ = side_end::fin;
      co_return peek_end::eof;
    }
    if (ec) {
      err_ = errno_of(ec);
      client_end_ = ec == asio::error::connection_reset ? side_end::rst : side_end::error;
      co_return ec == asio::error::connection_reset ? peek_end::reset : peek_end::error;
    }
    tls::proxy_header h;
    if (tls::parse_proxy_header(pp_in_, h) != tls::proxy_status::incomplete) {
      co_return peek_end::decided;
    }
    LINESMAN_RETURN_IF_CANCELLED(peek_end::cancelled);
  }
  co_return peek_end::decided;
}

void connection::end_at_inspect(stop_reason r, const char* pp_error) {
  if (!rec_.proxy_protocol) {
    rec_.proxy_protocol = proxy_protocol_value{};
  }
  rec_.proxy_protocol->error = pp_error;
  first_ = first_ ? first_
                  : std::optional<stop_by>(client_end_ == side_end::none ? stop_by::proxy
                                                                         : stop_by::client);
  if (client_end_ == side_end::none) {
    client_end_ = side_end::proxy;
  }
  // What the client sent is its first flight as far as the record goes (a PROXY header shows
  // as client_first.protocol proxy_v1/proxy_v2).
  if (!pp_in_.empty()) {
    (void)inspect_client_flight(pp_in_, 1, true, rec_);
  }
  set_stop(stop_phase::inspect, r, stop_by::client, r == stop_reason::client_reset ? err_ : 0);
  close_sockets();
  finish();
}

asio::awaitable<bool> connection::accept_proxy_header() {
  const auto& pp = l_.cfg.pp;
  auto r = co_await (read_proxy_header() || watch(accepted_ + l_.cfg.limits.peek));
  if (r.index() == 1) {
    if (std::get<1>(r) == watch_fire::shutdown) {
      client_end_ = side_end::proxy;
      first_ = stop_by::proxy;
      set_stop(stop_phase::stream, stop_reason::proxy_shutdown, stop_by::proxy);
      close_sockets();
      finish();
      co_return false;
    }
    client_end_ = side_end::timeout;
    first_ = stop_by::proxy;
    end_at_inspect(pp_in_.empty() ? stop_reason::client_silent : stop_reason::hello_incomplete,
                   pp_in_.empty() ? "missing" : "incomplete");
    co_return false;
  }
  switch (std::get<0>(r)) {
    case peek_end::eof:
      end_at_inspect(stop_reason::client_closed, pp_in_.empty() ? "missing" : "incomplete");
      co_return false;
    case peek_end::reset:
    case peek_end::error:
      end_at_inspect(stop_reason::client_reset, pp_in_.empty() ? "missing" : "incomplete");
      co_return false;
    case peek_end::cancelled:
    case peek_end::decided:
      break;
  }
  tls::proxy_header h;
  const auto status = tls::parse_proxy_header(pp_in_, h);
  if (status == tls::proxy_status::not_proxy) {
    if (pp.in != proxy_in_mode::auto_detect) {
      end_at_inspect(stop_reason::hello_malformed, "missing");
      co_return false;
    }
    // auto: no header; what was read is the start of the client's first flight.
    auto& f = cflight_;
    f.buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFlightBufferBytes);
    std::memcpy(f.buf.get(), pp_in_.data(), pp_in_.size());
    f.len = pp_in_.size();
    f.reads = 1;
    ccheck_ = inspect_client_flight({f.buf.get(), f.len}, f.reads, false, rec_);
    if (ccheck_.hello_complete) {
      rec_.timing.hello_complete = since_accept_us();
    }
    f.done = ccheck_.verdict != client_verdict::need_more;
    pp_in_.clear();
    co_return true;
  }
  if (status != tls::proxy_status::complete) {
    end_at_inspect(stop_reason::hello_malformed, "malformed");
    co_return false;
  }
  pp_parsed_ = true;
  proxy_protocol_value v;
  v.version = h.version == tls::proxy_version::v1 ? 1 : 2;
  v.command = h.command == tls::proxy_command::local ? "local" : "proxy";
  if (h.source.addr_len != 0) {
    v.source = pp_endpoint_value(h.source);
  }
  if (h.destination.addr_len != 0) {
    v.destination = pp_endpoint_value(h.destination);
  }
  if (h.version == tls::proxy_version::v2) {
    v.tlvs = pp_tlvs_json(h);
  }
  v.forwarded = false;  // true once send_proxy_header wrote it upstream unchanged
  rec_.proxy_protocol = std::move(v);
  if ((pp.in == proxy_in_mode::v1 && h.version != tls::proxy_version::v1) ||
      (pp.in == proxy_in_mode::v2 && h.version != tls::proxy_version::v2)) {
    rec_.proxy_protocol->forwarded = false;
    end_at_inspect(stop_reason::hello_malformed, "version_mismatch");
    co_return false;
  }
  const auto peer = to_pp_endpoint(rec_.client);
  bool trusted = false;
  for (const auto& net : pp.trusted) {
    trusted = trusted || cidr_contains(net, peer.address());
  }
  if (!trusted) {
    rec_.proxy_protocol->forwarded = false;
    end_at_inspect(stop_reason::hello_malformed, "untrusted_source");
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> connection::send_proxy_header() {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto& pp = l_.cfg.pp;
  // (A forwarded header counts as "sent" only when no route or listener writes its own.)
  if (pp_out_ == 0) {
    if (pp_parsed_ && !pp.strip) {
      auto [ec, n] = co_await asio::async_write(upstream_, asio::buffer(pp_in_), kTuple);
      rec_.bytes.to_upstream += n;
      rec_.proxy_protocol->forwarded = n == pp_in_.size();
      (void)ec;  // a failed write shows again in the relay, which classifies it
    }
    co_return;
  }
  // v2 carries the SNI: give the client's first flight a moment to arrive (bounded by the peek
  // timeout and kAuthorityWait, so a server-speaks-first protocol is delayed by little).
  if (pp_out_ == 2 && !cflight_.done && client_end_ == side_end::none) {
    constexpr auto kAuthorityWait = std::chrono::milliseconds(500);
    const auto until = std::min(accepted_ + l_.cfg.limits.peek, steady::now() + kAuthorityWait);
    co_await (read_client_flight(false) || watch(until));
  }
  proxy_out_value out;
  out.version = pp_out_;
  out.source = rec_.client;
  out.destination = rec_.local;
  if (rec_.proxy_protocol && rec_.proxy_protocol->source && rec_.proxy_protocol->destination) {
    out.source = *rec_.proxy_protocol->source;  // the real client, as the hop before us said
    out.destination = *rec_.proxy_protocol->destination;
  }
  auto src = to_pp_endpoint(out.source);
  auto dst = to_pp_endpoint(out.destination);
  if (src.addr_len != dst.addr_len) {
    out.source = rec_.client;
    out.destination = rec_.local;
    src = to_pp_endpoint(out.source);
    dst = to_pp_endpoint(out.destination);
  }
  std::array<std::uint8_t, 512> buf{};
  std::size_t len = 0;
  if (pp_out_ == 1) {
    len = tls::write_proxy_v1(src, dst, buf);
  } else {
    tls::proxy_v2_tlvs t;
    if (rec_.tls && rec_.tls->sni && rec_.tls->sni->size() <= 255) {
      out.authority = *rec_.tls->sni;
      t.authority = out.authority;
    }
    t.unique_id =
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(rec_.id.data()),
                                      std::min(rec_.id.size(), tls::kProxyV2MaxUniqueId));
    len = tls::write_proxy_v2(src, dst, t, buf);
  }
  if (len == 0) {
    spdlog::warn("{} could not build a PROXY v{} header", rec_.id, pp_out_);
    co_return;
  }
  auto [ec, n] = co_await asio::async_write(upstream_, asio::buffer(buf.data(), len), kTuple);
  out.bytes = n;
  (void)ec;  // a failed write shows again in the relay, which classifies it
  rec_.proxy_out = std::move(out);
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
  // The capture gets each FIN/RST when it happens: a source's own end, or the reset a
  // destination answered with (which ends the other direction).
  if (r.end == pump_end::src_eof || r.end == pump_end::src_reset) {
    cap_end(d, r.end == pump_end::src_reset);
  } else if (r.end == pump_end::dst_reset) {
    cap_end(c2u ? dir::u2c : dir::c2u, true);
  }
  switch (r.end) {
    case pump_end::src_eof: {
      if (open(src_end)) {
        src_end = side_end::fin;
      }
      if (!first_) {
        first_ = src_by;
      }
      // A FIN becomes a FIN: the other side may still answer (half-close). When that side has
      // already sent its own FIN (and we read all of it), both directions are over and the
      // close() that follows at once sends our FIN: one syscall less per connection.
      if (dst_end != side_end::fin) {
        std::error_code ignored;
        dst.shutdown(asio::socket_base::shutdown_send, ignored);
      }
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
    case pump_end::no_splice:
      break;
  }
  (void)src;
}

void connection::start_relay(dir d) {
  const bool c2u = d == dir::c2u;
  const flight& f = c2u ? cflight_ : uflight_;
  const bool eof_seen = c2u && client_end_ == side_end::fin;
  if (!f.buf && !f.done && !eof_seen && f.len == f.forwarded) {
    // Nothing of this direction read yet: wait for its first byte with a bare reactor wait, not
    // a suspended coroutine (an idle connection then holds no coroutine frame for it).
    auto& src = c2u ? client_ : upstream_;
    src.async_wait(asio::socket_base::wait_read, [this, d](const std::error_code& ec) {
      if (ec || abort_) {
        relay_done();
        return;
      }
      spawn_inspect(d);
    });
    return;
  }
  spawn_inspect(d);
}

void connection::spawn_inspect(dir d) {
  asio::co_spawn(client_.get_executor(), inspect_relay(d),
                 [this, d](const std::exception_ptr&, std::optional<pump_result> r) {
                   if (!r || abort_) {
                     relay_done();
                   } else if (r->end != pump_end::cancelled) {
                     note_end(d, *r);
                     relay_done();
                   } else {
                     start_stream(d);
                   }
                 });
}

asio::awaitable<std::optional<pump_result>> connection::inspect_relay(dir d) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const bool c2u = d == dir::c2u;
  auto& src = c2u ? client_ : upstream_;
  auto& dst = c2u ? upstream_ : client_;
  flight& f = c2u ? cflight_ : uflight_;
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
      co_return std::nullopt;
    }
  }
  const bool eof_seen = c2u && client_end_ == side_end::fin;

  // 2. Inspection: the rest of this direction's first flight passes through the bounded buffer,
  // each read forwarded at once (never held back waiting for a complete hello).
  while (!f.done && !eof_seen && !abort_) {
    if (!f.buf) {
      auto [ec] = co_await src.async_wait(asio::socket_base::wait_read, kTuple);
      if (ec || abort_) {
        co_return std::nullopt;
      }
      LINESMAN_RETURN_IF_CANCELLED(std::nullopt);
      f.buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFlightBufferBytes);
    }
    auto [ec, n] = co_await src.async_read_some(
        asio::buffer(f.buf.get() + f.len, kFlightBufferBytes - f.len), kTuple);
    if (abort_ || ec == asio::error::operation_aborted) {
      co_return std::nullopt;
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
    cap_data(d, f.buf.get() + start, n);
    f.len += n;
    ++f.reads;
    const bool full = f.len == kFlightBufferBytes;
    if (c2u) {
      on_client_bytes(n);
      // The reply has started: whatever the client sent before it was its first flight.
      inspect_client(f, full || uflight_.len > 0);
    } else {
      on_upstream_bytes(n);
      uverdict_ = inspect_upstream_flight({f.buf.get(), f.len}, client_spoke_tls(), full, rec_);
      f.done = full || uverdict_ != reply_verdict::need_more;
    }
    auto [wec, m] = co_await asio::async_write(dst, asio::buffer(f.buf.get() + start, n), kTuple);
    to += m;
    f.forwarded += m;
    if (abort_) {
      co_return std::nullopt;
    }
    if (wec) {
      note_end(d, classify_write_error(wec));
      co_return std::nullopt;
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
    co_return std::nullopt;
  }
  co_return res;
}

pump_counters connection::counters(dir d) {
  const bool c2u = d == dir::c2u;
  return {c2u ? &rec_.bytes.from_client : &rec_.bytes.from_upstream,
          c2u ? &rec_.bytes.to_upstream : &rec_.bytes.to_client, &last_activity_, &abort_};
}

void connection::start_stream(dir d) {
  const auto cd =
      d == dir::c2u ? capture::direction::client_to_server : capture::direction::server_to_client;
  if ((cap_ && cap_->wants_more(cd)) || w_.no_splice) {
    spawn_copy(d, false);
    return;
  }
  start_splice(d);
}

void connection::start_splice(dir d) {
  const bool c2u = d == dir::c2u;
  uncaptured_from_[static_cast<std::size_t>(d)] = *counters(d).from;
  splice_[static_cast<std::size_t>(d)].start(
      c2u ? client_ : upstream_, c2u ? upstream_ : client_, w_.pipes, counters(d),
      [](void* self, int tag, const pump_result& r) {
        static_cast<connection*>(self)->on_splice_end(static_cast<dir>(tag), r);
      },
      this, static_cast<int>(d));
}

void connection::on_splice_end(dir d, const pump_result& r) {
  if (r.end == pump_end::no_splice) {
    spdlog::debug("{} splice unavailable ({}); using read/write", rec_.id, errno_name(r.err));
    if (l_.stats != nullptr) {
      l_.stats->splice_fallbacks.fetch_add(1, std::memory_order_relaxed);
    }
    spawn_copy(d, true);
    return;
  }
  end_stream(d, r);
}

void connection::spawn_copy(dir d, bool fallback) {
  asio::co_spawn(client_.get_executor(), copy_relay(d, fallback),
                 [this, d](const std::exception_ptr&, std::optional<pump_result> r) {
                   if (!r && !abort_) {
                     start_splice(d);  // the capture has what it wants: splice the rest
                   } else {
                     end_stream(d, r.value_or(pump_result{pump_end::cancelled, 0}));
                   }
                 });
}

asio::awaitable<std::optional<pump_result>> connection::copy_relay(dir d, bool fallback) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto cd =
      d == dir::c2u ? capture::direction::client_to_server : capture::direction::server_to_client;
  if (!fallback && cap_ && cap_->wants_more(cd)) {
    // The recorder still wants bytes: copy through userspace until its bound, then splice.
    // (A named local: GCC 12 miscompiles co_await inside conditions.)
    const std::optional<pump_result> r = co_await capture_copy(d, counters(d));
    if (r) {
      co_return r;
    }
    if (abort_) {
      co_return pump_result{pump_end::cancelled, 0};
    }
  }
  if (!fallback && !w_.no_splice) {
    co_return std::nullopt;
  }
  uncaptured_from_[static_cast<std::size_t>(d)] = *counters(d).from;
  auto& src = d == dir::c2u ? client_ : upstream_;
  auto& dst = d == dir::c2u ? upstream_ : client_;
  auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kCopyBufferBytes);
  const pump_result r = co_await copy_pump(src, dst, {buf.get(), kCopyBufferBytes}, counters(d));
  co_return r;
}

void connection::end_stream(dir d, const pump_result& r) {
  const auto& since = uncaptured_from_[static_cast<std::size_t>(d)];
  if (cap_ && since) {
    // Past the bound: only counted, so later sequence numbers (and the FIN) stay honest.
    cap_->skipped(
        d == dir::c2u ? capture::direction::client_to_server : capture::direction::server_to_client,
        *counters(d).from - *since);
  }
  if (!abort_) {
    note_end(d, r);
  }
  relay_done();
}

asio::awaitable<std::optional<pump_result>> connection::capture_copy(dir d, pump_counters c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const bool c2u = d == dir::c2u;
  auto& src = c2u ? client_ : upstream_;
  auto& dst = c2u ? upstream_ : client_;
  const auto cd = c2u ? capture::direction::client_to_server : capture::direction::server_to_client;
  auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kCopyBufferBytes);
  while (cap_->wants_more(cd)) {
    auto [rec, n] = co_await src.async_read_some(asio::buffer(buf.get(), kCopyBufferBytes), kTuple);
    if (abort_) {
      co_return pump_result{pump_end::cancelled, 0};
    }
    if (rec) {
      co_return classify_read_error(rec);
    }
    *c.from += n;
    *c.last_activity = steady::now();
    cap_->data(cd, {buf.get(), n});
    auto [wec, m] = co_await asio::async_write(dst, asio::buffer(buf.get(), n), kTuple);
    *c.to += m;
    if (wec) {
      co_return classify_write_error(wec);
    }
    *c.last_activity = steady::now();
    if (abort_) {
      co_return pump_result{pump_end::cancelled, 0};
    }
  }
  co_return std::nullopt;
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
  // The reply was judged when it arrived. A server that speaks first (SSH, SMTP) can answer
  // before the client's hello is complete, so judge the pair again now that both are known:
  // a TLS client answered in plaintext is upstream_not_tls whichever came first.
  if (uverdict_ == reply_verdict::good && client_spoke_tls() && rec_.upstream_first &&
      rec_.upstream_first->bytes > 0 && rec_.upstream_first->protocol != "tls") {
    uverdict_ = reply_verdict::not_tls;
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
    default:
      break;
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
  if (cap_) {
    // FIN/RST the recorder has not seen yet (each is written at most once per direction): the
    // client's own end, and what the client got from us (the upstream's end, or ours).
    if (client_end_ == side_end::fin || client_end_ == side_end::rst) {
      cap_end(dir::c2u, client_end_ == side_end::rst);
    }
    cap_end(dir::u2c, rst_client_ || upstream_end_ == side_end::rst);
    cap_->close();
  }
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
  account_end();
  l_.sink->push(std::move(rec_));
}

asio::awaitable<bool> connection::run() {
  co_await asio::this_coro::throw_if_cancelled(false);
  start_record();
  const auto& cfg = l_.cfg;
  // PROXY protocol in: the header comes before anything the client says.
  if (cfg.pp.in != proxy_in_mode::off && !co_await accept_proxy_header()) {
    co_return false;
  }
  const host_port* target = cfg.upstream ? &*cfg.upstream : nullptr;
  const route_config* route = nullptr;
  host_port od_target;
  if (cfg.transparent) {
    std::error_code lec;
    const bool v6 = client_.local_endpoint(lec).address().is_v6() &&
                    !client_.local_endpoint(lec).address().to_v6().is_v4_mapped();
    rec_.original_dst = original_dst(client_.native_handle(), v6);
    // Without a redirect the original destination is the listener itself: connecting there
    // would loop back into linesman.
    const bool loop = rec_.original_dst && rec_.original_dst->ip == rec_.local.ip &&
                      rec_.original_dst->port == rec_.local.port;
    if (!rec_.original_dst || loop) {
      rec_.transparent_error = loop ? "redirect_loop" : "no_original_dst";
      client_end_ = side_end::proxy;
      first_ = stop_by::proxy;
      set_stop(stop_phase::route, stop_reason::no_route, stop_by::proxy);
      close_sockets();
      finish();
      co_return false;
    }
    od_target.host = rec_.original_dst->ip;
    od_target.port = rec_.original_dst->port;
    od_target.text =
        (v6 ? "[" + od_target.host + "]" : od_target.host) + ":" + std::to_string(od_target.port);
    target = &od_target;
  }

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
        co_return false;
      }
      (void)inspect_client_flight({cflight_.buf.get(), cflight_.len}, cflight_.reads, true, rec_);
      client_end_ = side_end::timeout;
      first_ = stop_by::proxy;
      failed =
          rec_.bytes.from_client == 0 ? stop_reason::client_silent : stop_reason::hello_incomplete;
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
      co_return false;
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
      co_return false;
    }
  }

  // connect: with a single upstream, at once, while the client's first flight is read (a
  // server-speaks-first protocol must get its greeting through).
  rec_.upstream = upstream_value{
      route != nullptr ? route->name : (cfg.transparent ? "original_dst" : "default"),
      target->text,
      {},
      0,
      0};
  connect_start_us_ = since_accept_us();
  enter_phase(live_phase::connect);
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
      co_return false;
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
    co_return false;
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
    co_return false;
  }

  // first reply + stream.
  upstream_open_ = true;
  upstream_end_ = side_end::none;
  const auto& connected = std::get<0>(c);
  rec_.timing.upstream_connected = since_accept_us();
  if (l_.stats != nullptr) {
    l_.stats->connect_seconds.observe_us(rec_.timing.upstream_connected - connect_start_us_);
  }
  enter_phase(live_phase::first_reply);
  {
    // The address connect() reached (no getpeername needed).
    const auto v = to_value(connected.peer);
    rec_.upstream->ip = v.ip;
    rec_.upstream->port = v.port;
  }
  std::error_code ec;
  const auto lep = upstream_.local_endpoint(ec);
  if (!ec) {
    rec_.upstream->local_port = lep.port();
  }
  rec_.upstream_first = first_flight_obs{};
  pp_out_ = route != nullptr && route->proxy_out ? *route->proxy_out : cfg.pp.out;
  if (pp_parsed_ || pp_out_ != 0) {
    co_await send_proxy_header();
  }
  last_activity_ = steady::now();
  // The two directions run as their own coroutines and this one is their watchdog. (Not
  // `(relay && relay) || watchdog`: the operators' frames and groups would stay allocated
  // for the whole stream, several KB per idle connection.)
  relays_left_ = 2;
  // (The executor comes from the socket, not from `co_await this_coro::executor`: GCC 12
  // mishandles that const local across the later suspensions of this long coroutine.)
  start_relay(dir::c2u);
  start_relay(dir::u2c);
  // From here the connection owns itself (run's caller releases it): the idle watchdog below is
  // a plain timer wait, so an idle connection holds no coroutine frame at all.
  watch_timer_.expires_at(relays_left_ == 0 ? steady::time_point::min()
                                            : last_activity_ + cfg.limits.idle);
  watch_timer_.async_wait([this](const std::error_code&) { on_stream_watch(); });
  co_return true;
}

}  // namespace linesman::proxy
