#include "proxy/server.hpp"

#include "proxy/admin.hpp"
#include "proxy/awaitable.hpp"
#include "proxy/config_watch.hpp"
#include "proxy/connection.hpp"
#include "proxy/fresh_socket.hpp"
#include "proxy/live.hpp"
#include "proxy/log_sink.hpp"
#include "proxy/loop_guard.hpp"
#include "proxy/port_owner.hpp"
#include "proxy/route.hpp"

#include <sys/resource.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include <asio.hpp>
#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

using steady = std::chrono::steady_clock;
// kAcceptBatch: how many connections an accept loop takes in a row before letting them start
// (accept_loop). wrk's 16 connections fit in one turn; HAProxy's tune.maxaccept default is 64.
constexpr int kAcceptBatch = 16;

// reuse_port: every worker binds its own acceptor to the same address; the kernel spreads
// incoming connections across them.
using reuse_port = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

// control_signals: blocks or unblocks, in the calling thread, the signals run() handles.
void control_signals(int how) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  ::pthread_sigmask(how, &set, nullptr);
}

std::string in_use_message(const std::string& addr, std::uint16_t port, const std::string& why) {
  std::string msg = "cannot listen on " + addr + ": " + why;
  if (port != 0) {
    if (const auto owner = find_port_owner(port)) {
      msg += " (held by " + owner->comm + ", pid " + std::to_string(owner->pid) + ")";
    }
  }
  return msg;
}

std::string lower_reason(const std::error_code& ec) {
  std::string s = ec.message();
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z') {
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  }
  return s;
}

bool fd_exhausted(const std::error_code& ec) {
  const int e = ec.value();
  return ec.category() == asio::error::get_system_category() &&
         (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM);
}

// is_local_address: an address of this host (loopback, or one of its interfaces).
bool is_local_address(const asio::ip::address& a) {
  if (a.is_loopback()) {
    return true;
  }
  asio::io_context io;
  asio::ip::tcp::socket probe(io);
  std::error_code ec;
  probe.open(a.is_v4() ? asio::ip::tcp::v4() : asio::ip::tcp::v6(), ec);
  if (!ec) {
    probe.bind({a, 0}, ec);  // only an address of this host can be bound
  }
  return !ec;
}

// points_at: whether connecting to `t` reaches the listener bound at `listener` (names resolved
// now; a name that does not resolve cannot be judged and passes).
bool points_at(const host_port& t, const asio::ip::tcp::endpoint& listener) {
  if (t.port != listener.port()) {
    return false;
  }
  asio::io_context io;
  asio::ip::tcp::resolver resolver(io);
  std::error_code ec;
  const auto results = resolver.resolve(t.host, std::to_string(t.port),
                                        asio::ip::resolver_base::numeric_service, ec);
  if (ec) {
    return false;
  }
  const auto plain = [](asio::ip::address a) {
    if (a.is_v6() && a.to_v6().is_v4_mapped()) {
      return asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6()));
    }
    return a;
  };
  for (const auto& r : results) {
    const auto a = plain(r.endpoint().address());
    if (a == plain(listener.address()) ||
        (listener.address().is_unspecified() && is_local_address(a))) {
      return true;
    }
  }
  return false;
}

}  // namespace

std::string format_endpoint(const std::string& ip, unsigned port) {
  if (ip.find(':') != std::string::npos) {
    return "[" + ip + "]:" + std::to_string(port);
  }
  return ip + ":" + std::to_string(port);
}

std::size_t default_max_connections(bool no_splice) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) {
    return 1000;
  }
  const rlim_t soft_before = rl.rlim_cur;
  // Raise the soft limit to the hard one, as HAProxy and nginx do: the soft default (1024) is
  // far below what a proxy holding two sockets per connection needs.
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit raised = rl;
    raised.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      rl = raised;
    }
  }
  const auto nofile = rl.rlim_cur == RLIM_INFINITY ? rlim_t{1} << 20 : rl.rlim_cur;
  // A connection holds its two sockets; pipes are borrowed from the worker's pool only while
  // bytes sit in them, so splicing reserves room for the pooled pipes and a busy burst instead of
  // four more descriptors per connection (a relay that cannot open a pipe falls back to copying).
  // The pipe reserve is at most a quarter of the table: at a low limit, connections come first.
  const rlim_t base = 32;
  const rlim_t pipes = no_splice ? 0 : std::min<rlim_t>(2 * 2 * pipe_pool::kMaxPooled, nofile / 4);
  const rlim_t reserve = base + pipes;
  const std::size_t per_conn = 2;
  const std::size_t limit =
      nofile <= reserve + per_conn ? 1 : static_cast<std::size_t>((nofile - reserve) / per_conn);
  spdlog::info("max connections {} by default (RLIMIT_NOFILE {}, soft limit was {}, hard {})",
               limit, nofile, soft_before, rl.rlim_max == RLIM_INFINITY ? nofile : rl.rlim_max);
  if (limit < 100) {
    spdlog::warn(
        "max connections {} is low: RLIMIT_NOFILE is {} and its hard limit cannot be raised from "
        "here; raise it (ulimit -Hn 65536 as root, LimitNOFILE=65536 in a systemd unit, "
        "--ulimit nofile=65536 for docker) or set --max-connections",
        limit, nofile);
  }
  return limit;
}

struct server::impl {
  // slot: one listener's acceptor on one worker. Its accept loop reads `rt` before each accept;
  // a reload points it at the new generation's runtime (on the worker's thread, by a post).
  struct slot {
    std::string key;
    std::unique_ptr<asio::ip::tcp::acceptor> acceptor;
    const listener_runtime* rt = nullptr;
  };

  struct worker {
    live_registry registry;  // first: outlives the connections' frames owned by io
    asio::io_context io{1};
    worker_state state;
    std::vector<std::shared_ptr<slot>> slots;  // one per listener; touched on this thread only
    bool draining = false;
    std::thread thread;
    std::unique_ptr<asio::steady_timer> interim;  // --log-open-every
  };

  // generation: the runtimes of one configuration, and the acceptors its new listeners bound
  // (fresh[i] holds one acceptor per worker when listener i needs a new bind, else is empty).
  struct generation {
    std::vector<std::unique_ptr<listener_runtime>> runtimes;
    std::vector<std::vector<std::unique_ptr<asio::ip::tcp::acceptor>>> fresh;
    std::vector<std::unique_ptr<listener_stats>> new_stats;
  };

  // retired: the runtimes a reload replaced. Freed once every worker has switched to the new
  // ones (`pending` workers left) and no connection uses them (listener_runtime::users).
  struct retired {
    std::vector<std::unique_ptr<listener_runtime>> runtimes;
    std::atomic<std::size_t> pending{0};
  };

  run_config cfg;
  reload_source reload_src;
  // ring: the recent final records for the admin page (--admin only); before `sinks`, which
  // push into it until they stop.
  std::unique_ptr<record_ring> ring;
  std::vector<std::unique_ptr<log_sink>> sinks;
  // captures: one per capture directory (listeners naming the same one share it: one budget).
  std::vector<std::unique_ptr<capture::capture_dir>> captures;
  // stats: per stats_key, for the server's lifetime (a listener that stays across reloads keeps
  // its counters).
  std::map<std::string, std::unique_ptr<listener_stats>> stats;
  std::map<std::string, std::size_t> loop_index;  // per listener key: its bit in loop_guard
  std::vector<std::unique_ptr<retired>> retirees;
  std::unique_ptr<fault_table> faults;  // every listener consults it (proxy/fault.hpp)
  std::vector<std::unique_ptr<listener_runtime>> listeners;  // the current generation
  std::vector<std::unique_ptr<worker>> workers;
  std::atomic<std::size_t> active{0};
  std::atomic<std::uint64_t> next_id{0};
  std::string id_tag;
  std::size_t max_connections = 0;
  std::atomic<std::int64_t> last_limit_log{0};
  std::uint64_t config_generation = 0;
  bool stopping = false;  // SIGTERM/SIGINT seen: reloads are ignored (signal thread only)
  live_hub hub;
  loop_guard loops;  // our upstream sockets' local endpoints, to recognise a forwarding loop
  std::unique_ptr<admin_server> admin;  // last: stopped before what it reads goes away

  explicit impl(run_config c, reload_source r) : cfg(std::move(c)), reload_src(std::move(r)) {
    // SIGINT, SIGTERM and SIGHUP go to the thread that calls run() only: every thread started
    // from here on (log writers, the admin's pool, the workers) inherits them blocked. A SIGHUP
    // delivered to an admin thread interrupted its poll (EINTR) and httplib closed that request's
    // socket unread, which the client saw as a reset (tests/integration/test_hostile_control.py).
    control_signals(SIG_BLOCK);
    unsigned threads = cfg.threads != 0 ? cfg.threads : std::thread::hardware_concurrency();
    threads = threads == 0 ? 1 : threads;
    max_connections =
        cfg.max_connections != 0 ? cfg.max_connections : default_max_connections(cfg.no_splice);
    if (cfg.max_connections != 0) {
      (void)default_max_connections(cfg.no_splice);  // still raise the descriptor limit
    }
    hub.max_connections = max_connections;
    if (!cfg.admin.listen.empty()) {
      ring = std::make_unique<record_ring>(cfg.admin.ring_records);
      hub.ring = ring.get();
    }
    std::random_device rd;
    char tag[16];
    std::snprintf(tag, sizeof tag, "%06x", rd() & 0xffffffU);
    id_tag = tag;

    for (unsigned i = 0; i < threads; ++i) {
      auto w = std::make_unique<worker>();
      w->state.no_splice = cfg.no_splice;
      w->state.active = &active;
      w->state.loops = &loops;
      if (!cfg.admin.listen.empty()) {
        // Only the admin endpoint reads the live view, and it is fixed at start: without it a
        // connection carries no live_conn (272 bytes and its strings).
        w->state.registry = &w->registry;
        hub.registries.push_back(&w->registry);
      }
      workers.push_back(std::move(w));
    }
    open_faults(rd);
    auto g = prepare(cfg.listeners);
    for (std::size_t i = 0; i < g.runtimes.size(); ++i) {
      for (std::size_t k = 0; k < workers.size(); ++k) {
        auto s = std::make_shared<slot>();
        s->key = g.runtimes[i]->key;
        s->acceptor = std::move(g.fresh[i][k]);
        s->rt = g.runtimes[i].get();
        workers[k]->slots.push_back(std::move(s));
      }
    }
    publish(g);
    if (!cfg.admin.listen.empty()) {
      admin = std::make_unique<admin_server>(cfg.admin, hub);
    }
  }

  // open_faults: the fault table (proxy/fault.hpp). Always there, so a reload or the admin API
  // can add faults; while it is empty a connection pays two atomic loads for it (no lock, no
  // allocation). Its "config" faults follow each published generation (publish).
  void open_faults(std::random_device& rd) {
    const std::uint64_t seed =
        cfg.fault_seed ? *cfg.fault_seed : (std::uint64_t{rd()} << 32 | rd());
    faults = std::make_unique<fault_table>(seed);
    hub.faults = faults.get();  // metrics, and /api/faults when --admin-faults is on
  }

  // interim_loop: every --log-open-every, an interim record for each connection of this worker
  // that is still open. Ends when the worker drains (start_drain cancels the timer).
  asio::awaitable<void> interim_loop(worker& w) {
    co_await asio::this_coro::throw_if_cancelled(false);
    auto& t = *w.interim;
    while (!w.draining) {
      t.expires_after(cfg.log_open_every);
      auto [ec] = co_await t.async_wait(kTuple);
      if (ec || w.draining) {
        co_return;
      }
      for (auto* c : w.state.live) {
        c->publish_open_record();
      }
    }
  }

  // open_capture: the capture_dir for `c` (shared with an earlier listener naming the same
  // directory). Throws config_error naming the directory when it cannot be created or read.
  capture::capture_dir* open_capture(const capture_config& c) {
    for (const auto& d : captures) {
      if (d->dir() == std::filesystem::path(c.dir)) {
        return d.get();
      }
    }
    capture::capture_dir::options o;
    o.dir = c.dir;
    o.bytes_per_direction = c.bytes_per_direction;
    o.max_total_bytes = c.max_total_bytes;
    // One message when capture stops (full disk, budget, write error); forwarding goes on.
    o.on_stop = [](const std::string& msg) { spdlog::error("{}", msg); };
    std::error_code ec;
    auto d = capture::capture_dir::open(std::move(o), ec);
    if (!d) {
      throw config_error("--capture: cannot use capture directory '" + c.dir +
                         "': " + ec.message());
    }
    spdlog::info("capturing to {} ({} per direction)", c.dir,
                 c.bytes_per_direction == ~std::uint64_t{0}
                     ? std::string("all bytes")
                     : std::to_string(c.bytes_per_direction) + " bytes");
    captures.push_back(std::move(d));
    return captures.back().get();
  }

  // listener_key: what a reload matches listeners by: the listen address as written, and for
  // port 0 (any free port) the name too, since the address alone says nothing there.
  static std::string listener_key(const listener_config& lc) {
    return lc.listen.port != 0 ? lc.listen.text : lc.name + "@" + lc.listen.text;
  }

  // stats_key: a listener's counters stay across reloads while its name and address stay (a
  // renamed listener starts new counters under its new name).
  static std::string stats_key(const listener_config& lc) {
    return lc.name + "\n" + lc.listen.text;
  }

  // sink_for: the sink of `path` in `format`, shared by every listener naming that file with that
  // format (one writer, no interleaving). A reload that changes a file's format gets a new sink;
  // the old one writes the records of the connections accepted before.
  log_sink* sink_for(const std::string& path, log_format format) {
    for (const auto& s : sinks) {
      if (s->path() == path && s->format() == format) {
        return s.get();
      }
    }
    sinks.push_back(
        std::make_unique<log_sink>(path, log_sink::kDefaultCapacity, format, ring.get()));
    return sinks.back().get();
  }

  // check_shared_logs: listeners of one configuration that name the same access log must agree
  // on its format: one file holds one kind of line. Throws config_error naming both listeners.
  static void check_shared_logs(const std::vector<listener_config>& lcs) {
    std::map<std::string, const listener_config*> first;
    for (const auto& lc : lcs) {
      const auto [it, added] = first.emplace(lc.access_log, &lc);
      if (!added && it->second->access_log_format != lc.access_log_format) {
        throw config_error("listeners '" + it->second->name + "' and '" + lc.name +
                           "' write the access log '" + lc.access_log + "' in different formats (" +
                           std::string(to_string(it->second->access_log_format)) + ", " +
                           std::string(to_string(lc.access_log_format)) +
                           "): give them the same log_format or different access_log files");
      }
    }
  }

  // bound_runtime: the current listener with `key` (its sockets stay across a reload), or null.
  const listener_runtime* bound_runtime(const std::string& key) const {
    for (const auto& l : listeners) {
      if (l->key == key) {
        return l.get();
      }
    }
    return nullptr;
  }

  // prepare: the runtimes of `lcs` as the next configuration generation: access logs and capture
  // directories opened (or shared), listeners whose key is not bound yet bound on every worker,
  // forwarding loops refused. Throws config_error or listen_error; what it opened is then not in
  // use (its sockets close with it, collect() closes its sinks) and nothing else has changed.
  generation prepare(const std::vector<listener_config>& lcs) {
    check_shared_logs(lcs);
    generation g;
    std::map<std::string, std::string> names;  // key -> listener name, to refuse duplicates
    for (const auto& lc : lcs) {
      auto rt = std::make_unique<listener_runtime>();
      rt->cfg = lc;
      rt->key = listener_key(lc);
      rt->generation = config_generation + 1;
      const auto [dup, added] = names.emplace(rt->key, lc.name);
      if (!added) {
        throw listen_error("listeners '" + dup->second + "' and '" + lc.name + "' both listen on " +
                           lc.listen.text);
      }
      rt->routes = route_table(lc.routes);
      rt->faults = faults.get();
      rt->sink = sink_for(lc.access_log, lc.access_log_format);
      if (!lc.capture.dir.empty()) {
        rt->capture = open_capture(lc.capture);
      }
      rt->index = loop_index.emplace(rt->key, loop_index.size()).first->second;
      if (const auto it = stats.find(stats_key(lc)); it != stats.end()) {
        rt->stats = it->second.get();
      } else {
        g.new_stats.push_back(std::make_unique<listener_stats>());
        rt->stats = g.new_stats.back().get();
        rt->stats->name = lc.name;
      }
      std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> fresh;
      if (const auto* old = bound_runtime(rt->key)) {
        rt->bound = old->bound;
      } else {
        fresh = bind_listener(*rt);
      }
      if (!g.new_stats.empty() && rt->stats == g.new_stats.back().get()) {
        // Written before the admin endpoint can see it; a listener's stats keep their address.
        rt->stats->listen = format_endpoint(rt->bound.address().to_string(), rt->bound.port());
      }
      g.runtimes.push_back(std::move(rt));
      g.fresh.push_back(std::move(fresh));
    }
    check_forwarding_loops(g.runtimes);
    return g;
  }

  // publish: makes `g` the current generation (its stats visible to the admin endpoint) and
  // returns the runtimes it replaces. Signal thread (or the constructor).
  std::vector<std::unique_ptr<listener_runtime>> publish(generation& g) {
    config_generation += 1;
    hub.config_generation.store(config_generation);
    std::vector<listener_stats*> visible;
    for (auto& st : g.new_stats) {
      auto* key_of = st.get();
      for (const auto& rt : g.runtimes) {
        if (rt->stats == key_of) {
          stats.emplace(stats_key(rt->cfg), std::move(st));
          break;
        }
      }
    }
    for (const auto& rt : g.runtimes) {
      visible.push_back(rt->stats);
    }
    hub.set_listeners(std::move(visible));
    std::vector<std::pair<std::string, fault_spec>> config_faults;
    for (const auto& rt : g.runtimes) {
      for (const auto& spec : rt->cfg.faults) {
        config_faults.emplace_back(rt->cfg.name, parse_fault(spec, "--fault"));  // checked before
      }
    }
    faults->replace_config(std::move(config_faults));
    std::vector<std::unique_ptr<listener_runtime>> old;
    old.swap(listeners);
    listeners = std::move(g.runtimes);
    return old;
  }

  // bind_listener: `l`'s address bound on every worker (one acceptor each, SO_REUSEPORT), its
  // bound address noted in `l`. Throws listen_error naming the address and, when /proc shows it,
  // the program holding the port.
  std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> bind_listener(listener_runtime& l) {
    std::vector<std::unique_ptr<asio::ip::tcp::acceptor>> out;
    const auto& addr_text = l.cfg.listen.text;
    std::error_code ec;
    const auto addr = asio::ip::make_address(l.cfg.listen.host, ec);
    if (ec) {
      throw listen_error("cannot listen on " + addr_text + ": not an IP address");
    }
    asio::ip::tcp::endpoint ep(addr, l.cfg.listen.port);
    if (ep.port() != 0) {
      // Probe without SO_REUSEPORT first: a program that holds the port with SO_REUSEPORT of its
      // own would otherwise silently share it with us.
      asio::io_context probe_io;
      asio::ip::tcp::acceptor probe(probe_io);
      probe.open(ep.protocol(), ec);
      if (!ec) {
        probe.set_option(asio::socket_base::reuse_address(true), ec);
        probe.bind(ep, ec);
      }
      if (ec) {
        throw listen_error(in_use_message(addr_text, ep.port(), lower_reason(ec)));
      }
    }
    for (auto& w : workers) {
      auto acc = std::make_unique<asio::ip::tcp::acceptor>(w->io);
      acc->open(ep.protocol(), ec);
      if (!ec) {
        acc->set_option(asio::socket_base::reuse_address(true), ec);
      }
      if (!ec) {
        acc->set_option(reuse_port(true), ec);
      }
      if (!ec) {
        acc->bind(ep, ec);
      }
      if (!ec) {
        acc->listen(asio::socket_base::max_listen_connections, ec);
      }
      if (ec) {
        throw listen_error(in_use_message(addr_text, ep.port(), lower_reason(ec)));
      }
      ep = acc->local_endpoint();  // port 0: the others bind the port the first one got
      out.push_back(std::move(acc));
    }
    l.bound = ep;
    // Tests parse this line to find the port; keep its shape.
    std::fprintf(stderr, "linesman: listening on %s (listener %s)\n",
                 format_endpoint(ep.address().to_string(), ep.port()).c_str(), l.cfg.name.c_str());
    std::fflush(stderr);
    return out;
  }

  // check_forwarding_loops: upstreams (or routes) that lead from a listener back to itself,
  // directly or through our other listeners, would feed every connection back into linesman
  // until the descriptors run out: refuse to start, naming the cycle. (A listener whose upstream
  // is another of our listeners is fine as long as the chain ends elsewhere. A loop this cannot
  // see, through a name that resolves differently later or an address it cannot judge, is
  // caught per connection by the loop_guard.)
  static void check_forwarding_loops(const std::vector<std::unique_ptr<listener_runtime>>& ls) {
    const std::size_t n = ls.size();
    std::vector<std::vector<std::size_t>> next(n);
    for (std::size_t i = 0; i < n; ++i) {
      const auto& lc = ls[i]->cfg;
      std::vector<const host_port*> targets;
      if (lc.upstream) {
        targets.push_back(&*lc.upstream);
      }
      for (const auto& r : lc.routes) {
        targets.push_back(&r.upstream);
      }
      for (std::size_t j = 0; j < n; ++j) {
        for (const auto* t : targets) {
          if (points_at(*t, ls[j]->bound)) {
            next[i].push_back(j);
            break;
          }
        }
      }
    }
    std::vector<std::size_t> path;
    std::vector<int> state(n, 0);  // 0 unseen, 1 on the path, 2 done
    for (std::size_t i = 0; i < n; ++i) {
      if (state[i] == 0 && on_cycle(i, next, state, path)) {
        std::string text;
        for (const auto k : path) {
          text += ls[k]->cfg.name + " (" +
                  format_endpoint(ls[k]->bound.address().to_string(), ls[k]->bound.port()) +
                  ") -> ";
        }
        text += ls[path.front()]->cfg.name;
        throw config_error("forwarding loop: " + text +
                           ": an upstream or route leads back to the listener it came from");
      }
    }
  }

  // on_cycle: depth-first search from `i`; true (with `path` from the cycle's start) when a
  // listener is reached again while still on the path. Bounded: each listener is entered once.
  static bool on_cycle(std::size_t i, const std::vector<std::vector<std::size_t>>& next,
                       std::vector<int>& state, std::vector<std::size_t>& path) {
    state[i] = 1;
    path.push_back(i);
    for (const auto j : next[i]) {
      if (state[j] == 1) {
        path.erase(path.begin(), std::find(path.begin(), path.end(), j));
        return true;
      }
      if (state[j] == 0 && on_cycle(j, next, state, path)) {
        return true;
      }
    }
    path.pop_back();
    state[i] = 2;
    return false;
  }

  bool log_throttled() {
    const auto now =
        std::chrono::duration_cast<std::chrono::milliseconds>(steady::now().time_since_epoch())
            .count();
    auto last = last_limit_log.load();
    if (now - last < 1000) {
      return false;
    }
    return last_limit_log.compare_exchange_strong(last, now);
  }

  asio::awaitable<void> serve(tcp_socket sock, asio::ip::tcp::endpoint peer,
                              const listener_runtime& l, worker& w, std::string id) {
    auto c = std::make_unique<connection>(std::move(sock), peer, l, w.state, std::move(id));
    const bool streaming = co_await c->run();
    if (streaming) {
      // The stream phase owns the connection now; it deletes itself when the stream ends, so an
      // idle connection keeps no coroutine frame alive (neither this one nor run's).
      (void)c.release();
    }
  }

  // accept_loop: accepts on `s`'s acceptor until it is closed (drain, or a reload removed the
  // listener). Each connection gets the runtime `s` points at when it is accepted.
  asio::awaitable<void> accept_loop(worker& w, std::shared_ptr<slot> s) {
    co_await asio::this_coro::throw_if_cancelled(false);
    int accepted_in_turn = 0;  // connections accepted since this loop last let them start
    auto& acc = *s->acceptor;
    asio::steady_timer pause(w.io);
    std::error_code nb_ec;
    acc.non_blocking(true, nb_ec);  // once: the accept below never blocks
    for (;;) {
      if (w.draining || !acc.is_open()) {
        co_return;
      }
      // Take a slot, then accept without blocking; wait for the listener only when its backlog
      // is empty. Checking the count before a (long) async_accept and counting after it let
      // every waiting loop (one per worker and listener) go one over the limit; holding a slot
      // while waiting would strand it on a worker the kernel sends no connection to. A busy
      // listener costs one accept(2) per connection and no wait (no epoll_ctl).
      if (active.fetch_add(1, std::memory_order_relaxed) >= max_connections) {
        active.fetch_sub(1, std::memory_order_relaxed);
        // At the limit, new connections wait in the kernel's backlog; look again shortly.
        if (log_throttled()) {
          spdlog::warn("max connections ({}) reached; not accepting", max_connections);
        }
        pause.expires_after(std::chrono::milliseconds(10));
        co_await pause.async_wait(kTuple);
        continue;
      }
      std::error_code ec;
      tcp_socket sock(w.io);
      asio::ip::tcp::endpoint peer;  // accept4(2) fills it in: no getpeername per connection
      ec = accept_fresh(acc, sock, peer);
      if (ec) {
        active.fetch_sub(1, std::memory_order_relaxed);  // the slot goes unused
      }
      if (ec == asio::error::would_block || ec == asio::error::try_again) {
        accepted_in_turn = 0;
        auto [wait_ec] = co_await acc.async_wait(asio::ip::tcp::acceptor::wait_read, kTuple);
        if (wait_ec == asio::error::operation_aborted || w.draining) {
          co_return;
        }
        continue;
      }
      if (ec) {
        if (ec == asio::error::operation_aborted || w.draining || !acc.is_open()) {
          co_return;
        }
        if (fd_exhausted(ec)) {
          // The pending connection stays in the backlog and accept would fail again at once:
          // back off instead of spinning.
          if (log_throttled()) {
            spdlog::warn("accept on {}: {}; pausing accepts for 100ms", s->rt->cfg.name,
                         ec.message());
          }
          pause.expires_after(std::chrono::milliseconds(100));
          co_await pause.async_wait(kTuple);
        }
        continue;
      }
      std::string id = id_tag + "-" + std::to_string(next_id.fetch_add(1) + 1);
      // The runtime is read and held with no wait in between: a reload switches `s->rt` on this
      // thread, so the connection holds the generation it was accepted under.
      const listener_runtime& l = *s->rt;
      l.users.fetch_add(1, std::memory_order_relaxed);
      hub.accepted.fetch_add(1, std::memory_order_relaxed);
      asio::co_spawn(w.io, serve(std::move(sock), peer, l, w, std::move(id)), asio::detached);
      // Accept up to kAcceptBatch connections, then let them start: their connects and first
      // sends then reach the upstream together, which wakes it (and preempts us) once per burst
      // instead of once per connection (2-3 us of CPU less per short connection:
      // bench/results/2026-12-03-core7/README.md).
      // Bounded, because a burst accepted in one go holds every set-up frame at once, and the
      // heap keeps that peak resident (unbounded, an idle connection cost 12 KB instead of
      // 2.6 KB). A post costs no system call.
      if (++accepted_in_turn < kAcceptBatch) {
        continue;
      }
      accepted_in_turn = 0;
      co_await asio::post(w.io, asio::use_awaitable);
    }
  }

  asio::awaitable<void> drain(worker& w) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto start = steady::now();
    asio::steady_timer t(w.io);
    while (!w.state.live.empty()) {
      const auto now = steady::now();
      std::vector<connection*> due;
      for (auto* c : w.state.live) {
        if (now - start >= c->drain_timeout()) {
          due.push_back(c);
        }
      }
      for (auto* c : due) {
        c->request_shutdown();
      }
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(kTuple);
    }
  }

  void start_drain(worker& w) {
    asio::post(w.io, [this, &w] {
      if (w.draining) {
        return;
      }
      w.draining = true;
      if (w.interim) {
        w.interim->cancel();
      }
      for (auto& sl : w.slots) {
        std::error_code ignored;
        sl->acceptor->close(ignored);
      }
      asio::co_spawn(w.io, drain(w), asio::detached);
    });
  }

  void cut_now(worker& w) {
    asio::post(w.io, [&w] {
      std::vector<connection*> all(w.state.live.begin(), w.state.live.end());
      for (auto* c : all) {
        c->request_shutdown();
      }
    });
  }

  // drain_removed: the connections of listeners a reload removed (key in `keys`, accepted before
  // generation `before`) get their listener's drain timeout, then proxy_shutdown, as on SIGTERM.
  // Ends when none is left, or when a full drain takes over.
  asio::awaitable<void> drain_removed(worker& w, std::set<std::string> keys, std::uint64_t before) {
    co_await asio::this_coro::throw_if_cancelled(false);
    const auto start = steady::now();
    asio::steady_timer t(w.io);
    for (;;) {
      const auto now = steady::now();
      bool any = false;
      std::vector<connection*> due;
      for (auto* c : w.state.live) {
        const auto& rt = c->runtime();
        if (rt.generation >= before || keys.count(rt.key) == 0) {
          continue;
        }
        any = true;
        if (now - start >= c->drain_timeout()) {
          due.push_back(c);
        }
      }
      for (auto* c : due) {
        c->request_shutdown();
      }
      if (!any || w.draining) {
        co_return;
      }
      t.expires_after(std::chrono::milliseconds(20));
      co_await t.async_wait(kTuple);
    }
  }

  // switch_workers: every worker moves to the current generation: kept listeners' slots point at
  // their new runtimes, new listeners start accepting, removed ones close and drain. `old` is
  // retired until every worker has switched and its connections have ended (collect()).
  void switch_workers(generation& g, std::vector<std::unique_ptr<listener_runtime>> old) {
    auto ret = std::make_unique<retired>();
    ret->runtimes = std::move(old);
    ret->pending.store(workers.size());
    retired* done = ret.get();
    retirees.push_back(std::move(ret));
    const std::uint64_t gen = config_generation;
    for (std::size_t k = 0; k < workers.size(); ++k) {
      auto keep = std::make_shared<std::map<std::string, const listener_runtime*>>();
      auto add = std::make_shared<std::vector<std::shared_ptr<slot>>>();
      for (std::size_t i = 0; i < listeners.size(); ++i) {
        if (g.fresh[i].empty()) {
          (*keep)[listeners[i]->key] = listeners[i].get();
        } else {
          auto sl = std::make_shared<slot>();
          sl->key = listeners[i]->key;
          sl->acceptor = std::move(g.fresh[i][k]);
          sl->rt = listeners[i].get();
          add->push_back(std::move(sl));
        }
      }
      worker& w = *workers[k];
      asio::post(w.io, [this, &w, keep, add, done, gen] {
        std::vector<std::shared_ptr<slot>> next;
        std::set<std::string> removed;
        for (auto& sl : w.slots) {
          if (const auto it = keep->find(sl->key); it != keep->end()) {
            sl->rt = it->second;
            next.push_back(sl);
          } else {
            std::error_code ignored;
            sl->acceptor->close(ignored);  // its accept loop ends at its next wake-up
            removed.insert(sl->key);
          }
        }
        for (auto& sl : *add) {
          if (w.draining) {
            std::error_code ignored;
            sl->acceptor->close(ignored);
            continue;
          }
          next.push_back(sl);
          asio::co_spawn(w.io, accept_loop(w, sl), asio::detached);
        }
        w.slots = std::move(next);
        if (!removed.empty() && !w.draining) {
          asio::co_spawn(w.io, drain_removed(w, std::move(removed), gen), asio::detached);
        }
        done->pending.fetch_sub(1, std::memory_order_release);
      });
    }
  }

  // reload: SIGHUP or --watch (`why`). New connections get the file's configuration; a file that
  // does not load, validate or bind changes nothing. Signal thread only.
  void reload(const char* why) {
    if (!reload_src.load || stopping) {
      return;
    }
    generation g;
    try {
      const run_config next = reload_src.load();
      g = prepare(next.listeners);
    } catch (const std::exception& e) {  // config_error, listen_error (and a failed allocation)
      hub.reloads_failure.fetch_add(1);
      spdlog::error("{}: reload of '{}' failed, configuration generation {} stays in use: {}", why,
                    reload_src.path, config_generation, e.what());
      collect();
      return;
    }
    std::size_t added = 0;
    for (const auto& f : g.fresh) {
      added += f.empty() ? 0 : 1;
    }
    auto old = publish(g);
    const std::size_t removed = old.size() + added - listeners.size();
    switch_workers(g, std::move(old));
    hub.reloads_success.fetch_add(1);
    spdlog::info(
        "{}: reloaded '{}': configuration generation {}, {} listeners ({} added, {} removed)", why,
        reload_src.path, config_generation, listeners.size(), added, removed);
  }

  // collect: frees retired runtimes no connection uses any more, and closes the access logs no
  // runtime writes to (their queued records written first). Signal thread only.
  void collect() {
    for (auto& r : retirees) {
      if (r->pending.load(std::memory_order_acquire) != 0) {
        continue;
      }
      std::erase_if(r->runtimes, [](const std::unique_ptr<listener_runtime>& rt) {
        return rt->users.load(std::memory_order_acquire) == 0;
      });
    }
    std::erase_if(retirees, [](const std::unique_ptr<retired>& r) {
      return r->pending.load(std::memory_order_acquire) == 0 && r->runtimes.empty();
    });
    std::set<const log_sink*> used;
    for (const auto& l : listeners) {
      used.insert(l->sink);
    }
    for (const auto& r : retirees) {
      for (const auto& l : r->runtimes) {
        used.insert(l->sink);
      }
    }
    std::erase_if(sinks, [&](const std::unique_ptr<log_sink>& s) {
      if (used.count(s.get()) != 0) {
        return false;
      }
      s->stop();
      return true;
    });
  }

  // longest_drain: the longest drain timeout of every runtime still in use.
  duration longest_drain() const {
    duration out{0};
    for (const auto& l : listeners) {
      out = std::max(out, l->cfg.limits.drain);
    }
    for (const auto& r : retirees) {
      for (const auto& l : r->runtimes) {
        out = std::max(out, l->cfg.limits.drain);
      }
    }
    return out;
  }

  int run() {
    // splice(2) and write(2) toward a socket whose peer is gone raise SIGPIPE (splice has no
    // MSG_NOSIGNAL); the data plane wants the EPIPE instead, recorded as that side's end.
    std::signal(SIGPIPE, SIG_IGN);
    asio::io_context ctl;
    asio::signal_set sigs(ctl, SIGINT, SIGTERM, SIGHUP);
    std::atomic<std::size_t> running{workers.size()};
    for (auto& w : workers) {
      for (const auto& sl : w->slots) {
        asio::co_spawn(w->io, accept_loop(*w, sl), asio::detached);
      }
      if (cfg.log_open_every.count() > 0) {
        w->interim = std::make_unique<asio::steady_timer>(w->io);
        asio::co_spawn(w->io, interim_loop(*w), asio::detached);
      }
      w->thread = std::thread([this, &w = *w, &running, &ctl, &sigs] {
        w.io.run();
        if (running.fetch_sub(1) == 1) {
          asio::post(ctl, [&sigs] {
            std::error_code ignored;
            sigs.cancel(ignored);
          });
        }
      });
    }
    int stops = 0;
    // Safety net: if a connection ignores its shutdown request (a bug), the process must still
    // exit once every drain timeout has passed, with the records written so far flushed.
    asio::steady_timer force_exit(ctl);
    bool forced = false;
    // Retired configurations and unused access logs are freed once a second.
    asio::steady_timer sweep(ctl);
    std::function<void(const std::error_code&)> on_sweep = [&](const std::error_code& ec) {
      if (ec || stopping) {
        return;
      }
      collect();
      sweep.expires_after(std::chrono::seconds(1));
      sweep.async_wait(on_sweep);
    };
    sweep.expires_after(std::chrono::seconds(1));
    sweep.async_wait(on_sweep);
    std::unique_ptr<config_watch> watch;
    if (reload_src.watch && reload_src.load) {
      watch = std::make_unique<config_watch>(
          ctl, reload_src.path, [this] { reload("--watch"); }, reload_src.loaded);
    }
    std::function<void(const std::error_code&, int)> on_signal = [&](const std::error_code& ec,
                                                                     int sig) {
      if (ec) {
        force_exit.cancel();
        sweep.cancel();
        if (watch) {
          watch->stop();
        }
        return;  // cancelled: every worker finished
      }
      if (sig == SIGHUP) {
        spdlog::info("SIGHUP: reopening access logs");
        for (auto& s : sinks) {
          s->request_reopen();
        }
        reload("SIGHUP");
      } else if (++stops == 1) {
        spdlog::info("signal {}: no longer accepting, draining connections", sig);
        stopping = true;
        sweep.cancel();
        if (watch) {
          watch->stop();
        }
        for (auto& w : workers) {
          start_drain(*w);
        }
        force_exit.expires_after(longest_drain() + std::chrono::seconds(5));
        force_exit.async_wait([this, &sigs, &forced](const std::error_code& tec) {
          if (tec) {
            return;
          }
          forced = true;
          spdlog::error("connections still open {}s after the drain timeout; exiting anyway", 5);
          for (auto& w : workers) {
            w->io.stop();
          }
          std::error_code ignored;
          sigs.cancel(ignored);
        });
      } else {
        spdlog::info("signal {} again: closing every connection now", sig);
        for (auto& w : workers) {
          cut_now(*w);
        }
      }
      sigs.async_wait(on_signal);
    };
    sigs.async_wait(on_signal);
    control_signals(SIG_UNBLOCK);  // (one held back meanwhile is delivered now)
    ctl.run();
    for (auto& w : workers) {
      if (w->thread.joinable()) {
        w->thread.join();
      }
    }
    for (auto& s : sinks) {
      s->stop();
    }
    for (auto& s : sinks) {
      if (s->dropped() != 0) {
        spdlog::warn("access log '{}': {} records dropped in total", s->path(), s->dropped());
      }
    }
    if (forced) {
      // The stopped loops still own coroutine frames that point into worker state; do not run
      // their destructors. Everything written is flushed above.
      std::fflush(nullptr);
      std::_Exit(0);
    }
    return 0;
  }
};

server::server(run_config cfg, reload_source reload)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(reload))) {}
server::~server() = default;
int server::run() { return impl_->run(); }

}  // namespace linesman::proxy
