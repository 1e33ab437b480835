#include "proxy/connection.hpp"

#include "proxy/connection_detail.hpp"
#include "proxy/fresh_socket.hpp"
#include "proxy/hint.hpp"
#include "proxy/server.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <asio/experimental/as_tuple.hpp>
#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

using detail::steady;
using detail::to_value;

stop_phase stop_phase_of(live_phase p) {
  switch (p) {
    case live_phase::inspect:
      return stop_phase::inspect;
    case live_phase::connect:
      return stop_phase::connect;
    case live_phase::first_reply:
      return stop_phase::first_reply;
    case live_phase::stream:
      return stop_phase::stream;
  }
  return stop_phase::stream;
}

// apply: the decision into the record (stop, errno, outcome).
void apply(const stop_decision& d, access_record& r) {
  r.stop.phase = d.phase;
  r.stop.reason = d.reason;
  r.stop.by = d.by;
  r.stop.errno_name = d.err != 0 ? errno_name(d.err) : std::string();
  r.ok = d.ok;
}

}  // namespace

connection::connection(tcp_socket client, const asio::ip::tcp::endpoint& peer,
                       const listener_runtime& l, worker_state& w, std::string id)
    : sides_{side(tcp_socket(client.get_executor())), side(tcp_socket(client.get_executor()))},
      listener_(l),
      worker_(w),
      watch_timer_(client.get_executor()) {
  sides_[0].socket = std::move(client);
  peer_ = peer;
  worker_.live.push_front(this);
  registration_ = worker_.live.begin();
  record_.id = std::move(id);
  if (worker_.registry != nullptr) {
    // Only the admin's view reads it: without --admin a connection does not carry it.
    live_ = std::make_unique<live_conn>();
    live_->id = record_.id;
    live_->listener = listener_.stats;
  }
}

connection::~connection() {
  if (watch_) {
    ++watch_->round;  // (every round already ended; a handler still queued stays away from us)
  }
  if (worker_.loops != nullptr) {
    worker_.loops->remove(loop_entry_);
  }
  if (live_) {
    worker_.registry->unlink(*live_);
  }
  worker_.live.erase(registration_);
  if (worker_.active != nullptr) {
    worker_.active->fetch_sub(1, std::memory_order_relaxed);
  }
  if (listener_.users.load(std::memory_order_relaxed) != 0) {  // 0: not started by an accept loop
    listener_.users.fetch_sub(1, std::memory_order_release);
  }
}

void connection::request_shutdown() {
  if (shutdown_requested_) {
    return;
  }
  shutdown_requested_ = true;
  watch_timer_.cancel();
}

std::int64_t connection::since_accept_us() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - accepted_).count();
}

std::pair<asio::ip::tcp::endpoint, asio::ip::tcp::endpoint> connection::start_record() {
  record_.ts = std::chrono::system_clock::now();
  accepted_ = steady::now();
  last_activity_ = accepted_;
  record_.listener = listener_.cfg.name;
  record_.config_generation = listener_.generation;
  // Addresses without asking the kernel where it told us already: accept(2) gave the peer, and
  // a listener bound to one address is the local end (only a wildcard or transparent listener
  // needs getsockname).
  std::error_code rec;
  std::error_code lec;
  const auto remote = peer_.port() != 0 ? peer_ : client().remote_endpoint(rec);
  const bool wildcard = listener_.bound.address().is_unspecified() || listener_.cfg.transparent ||
                        listener_.bound.port() == 0;
  const auto local = wildcard ? client().local_endpoint(lec) : listener_.bound;
  if (!rec) {
    record_.client = to_value(remote);
  }
  if (!lec) {
    record_.local = to_value(local);
  }
  if (listener_.capture != nullptr && !listener_.capture->stopped() && !rec && !lec) {
    // The capture shows the conversation as the client had it: client <-> linesman's listener,
    // its SYN stamped with the accept time.
    std::string name;
    recorder_ = listener_.capture->start(record_.id, remote, local, name, record_.ts);
    if (recorder_) {
      record_.capture = std::move(name);
    }
  }
  tune_stream(client());  // (accept4 made it non-blocking: only TCP_NODELAY is set here)
  if (live_) {
    live_->client = format_endpoint(record_.client.ip, record_.client.port);
    live_->accepted_wall = record_.ts;
    live_->accepted_ns.store(steady_ns(), std::memory_order_relaxed);
    live_->from_client = &record_.bytes.from_client;
    live_->from_upstream = &record_.bytes.from_upstream;
    set_phase(*live_, live_phase::inspect);
    worker_.registry->link(*live_);
  }
  record_started_ = true;
  return {remote, local};
}

bool connection::end_if_loop(const asio::ip::tcp::endpoint& peer,
                             const asio::ip::tcp::endpoint& local) {
  if (worker_.loops == nullptr) {
    return false;
  }
  const auto chain = worker_.loops->arrive(peer, local, listener_.index);
  if (chain) {
    chain_ = *chain;
    return false;
  }
  spdlog::warn("{} forwarding loop: the client {} is linesman's own upstream connection",
               record_.id, format_endpoint(record_.client.ip, record_.client.port));
  record_.warnings.emplace_back("forwarding_loop");
  facts_.client_end = side_end::proxy;
  facts_.first_close = stop_by::proxy;
  end_before_stream(stop_phase::route);
  return true;
}

void connection::enter_phase(live_phase p) {
  facts_.phase = stop_phase_of(p);
  publish_live_strings();
  if (live_) {
    set_phase(*live_, p);
  }
}

void connection::publish_live_strings() {
  if (!live_) {
    return;
  }
  // Strings are read on this thread (the only writer) and written under the registry lock.
  const std::string* sni = nullptr;
  if (live_->sni.empty() && record_.tls && record_.tls->sni) {
    sni = &*record_.tls->sni;
  }
  const std::string* route = record_.route && live_->route.empty() ? &*record_.route : nullptr;
  const std::string* up =
      record_.upstream && live_->upstream.empty() ? &record_.upstream->address : nullptr;
  if (sni != nullptr || route != nullptr || up != nullptr) {
    worker_.registry->set_strings(*live_, sni, route, up);
  }
}

void connection::account_end() {
  listener_stats* st = listener_.stats;
  const auto account = [&] {
    if (st == nullptr) {
      return;
    }
    const auto p = static_cast<std::size_t>(record_.stop.phase);
    const auto r = static_cast<std::size_t>(record_.stop.reason);
    if (p < kStopPhases && r < kStopReasons) {
      st->ended[p][r].fetch_add(1, std::memory_order_relaxed);
    }
    st->closed_from_client.fetch_add(record_.bytes.from_client, std::memory_order_relaxed);
    st->closed_from_upstream.fetch_add(record_.bytes.from_upstream, std::memory_order_relaxed);
    flight_outcome o = flight_outcome::incomplete;
    if (record_.bytes.from_client == 0) {
      o = flight_outcome::none;
    } else if (client_check_.hello_complete) {
      o = flight_outcome::complete;
    } else if (client_check_.verdict == client_verdict::malformed) {
      o = flight_outcome::malformed;
    } else if (client_check_.verdict == client_verdict::too_large) {
      o = flight_outcome::too_large;
    } else if (!client_check_.tls && client_check_.verdict == client_verdict::done) {
      o = flight_outcome::not_tls;
    }
    st->flight[static_cast<std::size_t>(o)].fetch_add(1, std::memory_order_relaxed);
    count_warnings(*st, record_.warnings);
  };
  if (live_) {
    // Counted and unlinked in one step: a scrape sees this connection either open or ended.
    worker_.registry->unlink(*live_, account);
  } else {
    account();
  }
}

void connection::sync_facts() {
  facts_.from_client = record_.bytes.from_client;
  facts_.from_upstream = record_.bytes.from_upstream;
  facts_.client = client_check_.verdict;
  facts_.client_tls = client_check_.tls;
  facts_.hello_complete = client_check_.hello_complete;
  facts_.client_spoke_tls = client_spoke_tls();
  facts_.reply_plaintext = record_.upstream_first && record_.upstream_first->bytes > 0 &&
                           record_.upstream_first->protocol != "tls";
}

void connection::publish_open_record() {
  if (!record_started_ || !live_ || !live_->linked) {
    return;
  }
  sync_facts();
  connection_facts f = facts_;
  f.open = true;
  access_record r = record_;
  apply(classify(f), r);
  r.open_state = true;
  r.duration_us = since_accept_us();
  r.close.first.reset();
  r.close.client = side_end::open;
  r.close.upstream = facts_.upstream_end == side_end::never ? side_end::never : side_end::open;
  if (!r.client_first) {
    r.client_first = first_flight_obs{};
  }
  add_record_warnings(r);
  r.hint = hint_for(r);
  listener_.sink->push(std::move(r));
}

asio::awaitable<timer_fire> connection::watch(steady::time_point deadline) {
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    if (shutdown_requested_) {
      co_return timer_fire::shutdown;
    }
    if (steady::now() >= deadline) {
      co_return timer_fire::deadline;
    }
    watch_timer_.expires_at(deadline);
    co_await watch_timer_.async_wait(kTuple);
    // (A named local: GCC 12 miscompiles co_await nested inside this condition.)
    const auto state = co_await asio::this_coro::cancellation_state;
    if (!shutdown_requested_ && state.cancelled() != asio::cancellation_type::none) {
      co_return timer_fire::deadline;  // the race is over; the value is ignored
    }
  }
}

void connection::begin_watch() {
  if (!watch_) {
    watch_ = std::make_shared<phase_watch>();
    watch_->conn = this;
  }
}

void connection::watch_deadline(steady::time_point deadline) {
  if (shutdown_requested_) {
    watch_->fired = timer_fire::shutdown;  // the caller looks before it starts the operation
    return;
  }
  watch_timer_.expires_at(deadline);
  watch_timer_.async_wait([w = watch_, round = watch_->round](const std::error_code& ec) {
    if (w->round != round) {
      return;  // the awaited operation returned first
    }
    connection& c = *w->conn;
    if (c.shutdown_requested_) {
      w->fired = timer_fire::shutdown;
    } else if (!ec) {
      w->fired = timer_fire::deadline;
    } else {
      return;
    }
    c.cancel_watched();
  });
}

void connection::cancel_watched() {
  std::error_code ignored;
  client().cancel(ignored);
  if (watch_->close_upstream) {
    upstream().close(ignored);
  } else {
    upstream().cancel(ignored);
  }
  if (watch_->resolver != nullptr) {
    watch_->resolver->cancel();
  }
}

connection::phase_watch connection::end_watch() {
  const phase_watch seen = *watch_;
  ++watch_->round;
  watch_->fired = timer_fire::none;
  watch_->client_left = false;
  watch_->resolver = nullptr;
  watch_->close_upstream = false;
  std::error_code ignored;
  watch_timer_.cancel();
  client().cancel(ignored);  // the client watch beside a connect, if still waiting
  return seen;
}

void connection::end_before_stream(stop_phase p) {
  facts_.phase = p;
  if (facts_.fired == timer_fire::shutdown) {
    facts_.client_end = side_end::proxy;
    facts_.first_close = stop_by::proxy;
  }
  close_sockets();
  finish();
}

void connection::close_sockets() {
  if (recorder_) {
    // FIN/RST the recorder has not seen yet (each is written at most once per direction): the
    // client's own end, and what the client got from us (the upstream's end, or ours).
    if (facts_.client_end == side_end::fin || facts_.client_end == side_end::rst) {
      record_end(dir::c2u, facts_.client_end == side_end::rst);
    }
    record_end(dir::u2c, src(dir::c2u).reset_on_close || facts_.upstream_end == side_end::rst);
    recorder_->close();
  }
  for (auto& s : sides_) {
    std::error_code ignored;
    if (s.reset_on_close) {
      // SO_LINGER {1, 0}: close() sends an RST instead of a FIN.
      s.socket.set_option(asio::socket_base::linger(true, 0), ignored);
    }
    s.socket.close(ignored);
  }
  if (worker_.loops != nullptr) {
    worker_.loops->remove(loop_entry_);
  }
}

void connection::finish() {
  sync_facts();
  apply(classify(facts_), record_);
  record_.duration_us = since_accept_us();
  record_.close.first = facts_.first_close;
  record_.close.client = facts_.client_end == side_end::none ? side_end::open : facts_.client_end;
  record_.close.upstream = facts_.upstream_end;
  if (!record_.client_first) {
    record_.client_first = first_flight_obs{};
  }
  add_record_warnings(record_);
  record_.hint = hint_for(record_);
  account_end();
  listener_.sink->push(std::move(record_));
}

asio::awaitable<bool> connection::run() {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto [peer, local] = start_record();
  if (end_if_loop(peer, local)) {
    co_return false;
  }
  const auto& cfg = listener_.cfg;
  // PROXY protocol in: the header comes before anything the client says.
  if (cfg.pp.in != proxy_in_mode::off && !co_await accept_proxy_header()) {
    co_return false;
  }
  const host_port* target = cfg.upstream ? &*cfg.upstream : nullptr;
  host_port original;
  if (cfg.transparent) {
    if (!take_original_dst(original)) {
      co_return false;
    }
    target = &original;
  }
  const route_config* route = nullptr;
  // A fault that needs the client's hello (proxy/fault.hpp) holds it as SNI routes do.
  const bool hold = listener_.faults != nullptr && listener_.faults->needs_hello(cfg.name);
  if (!listener_.routes.empty() || hold) {
    const auto routed = co_await route_on_hello(target);
    if (!routed) {
      co_return false;
    }
    route = *routed;
    target = route != nullptr ? &route->upstream : target;
  }
  if (listener_.faults != nullptr) {
    decide_fault(route, hold);
  }
  if (!co_await connect_phase(*target, route)) {
    co_return false;
  }
  start_stream_phase();
  co_return true;
}

}  // namespace linesman::proxy
