// reactor_ab: the A/B of two ways to drive a connection's sockets, outside linesman so that the
// reactor is the only difference. Both modes do exactly what linesman does for a plain short
// connection, with the same system calls apart from the reactor's own:
//   accept4 (non-blocking) -> socket + connect (non-blocking) -> read the client's first flight
//   -> wait for the connect, getsockopt(SO_ERROR) -> send the flight -> splice both ways through
//   a pipe until both ends closed (shutdown(SHUT_WR) passes each FIN on) -> one log line.
//
//   --mode asio:  Asio 1.22 as linesman uses it: a coroutine per connection for the first
//                 flights, async_wait for readiness, callbacks for the splice relay. Every wait
//                 Asio cannot perform speculatively is an EPOLL_CTL_MOD
//                 (asio/detail/impl/epoll_reactor.ipp, start_op).
//   --mode epoll: a thin edge-triggered epoll loop: each socket is registered once with
//                 EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET; readiness is remembered per socket
//                 and cleared only on EAGAIN, so a wait costs no system call.
//
// Usage: reactor_ab --mode asio|epoll --listen PORT --upstream PORT [--log FILE]
// One thread, 127.0.0.1 only. Used by bench/e2e (contenders "ab-asio", "ab-epoll").
#include "proxy/fresh_socket.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

namespace {

constexpr std::size_t kFlight = 16 * 1024;
constexpr std::size_t kChunk = 1 << 20;

sockaddr_in loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

int open_listener(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  const auto a = loopback(port);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0) {
    std::perror("listen");
    std::exit(1);
  }
  return fd;
}

// connect_upstream: a non-blocking socket whose connect is under way (or done), -1 on failure.
int connect_upstream(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto a = loopback(port);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// logger: one line per connection, buffered like linesman's sink (a write per 64 KiB).
struct logger {
  std::FILE* f = nullptr;
  void line(std::uint64_t id, std::uint64_t up, std::uint64_t down) const {
    if (f != nullptr) {
      std::fprintf(f, "{\"id\":%llu,\"from_client\":%llu,\"from_upstream\":%llu}\n",
                   static_cast<unsigned long long>(id), static_cast<unsigned long long>(up),
                   static_cast<unsigned long long>(down));
    }
  }
};

// ---- epoll mode ------------------------------------------------------------------------------

struct ep_conn;
struct ep_side {
  ep_conn* c = nullptr;
  int fd = -1;
  bool readable = false;
  bool writable = false;
};
struct ep_dir {
  std::array<int, 2> pipe{-1, -1};
  std::size_t in_pipe = 0;
  std::uint64_t moved = 0;
  bool done = false;  // source ended and everything passed on (FIN forwarded)
};
struct ep_conn {
  std::uint64_t id = 0;
  std::array<ep_side, 2> s;  // 0 client, 1 upstream
  std::array<ep_dir, 2> d;   // 0 client->upstream, 1 upstream->client
  std::unique_ptr<char[]> flight;
  std::size_t flight_len = 0;
  bool flight_read = false;
  bool connected = false;
  bool relaying = false;
  bool finished = false;  // closed; freed after the epoll_wait batch that may still name it
};

class epoll_loop {
 public:
  epoll_loop(int listen_port, int upstream_port, logger log)
      : ep_(::epoll_create1(EPOLL_CLOEXEC)),
        lfd_(open_listener(listen_port)),
        up_(upstream_port),
        log_(log) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;
    ev.data.ptr = nullptr;  // the listener
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, lfd_, &ev);
  }

  void run() {
    std::array<epoll_event, 256> evs{};
    for (;;) {
      const int n = ::epoll_wait(ep_, evs.data(), static_cast<int>(evs.size()), -1);
      reap();
      for (int i = 0; i < n; ++i) {
        auto* side = static_cast<ep_side*>(evs[i].data.ptr);
        if (side == nullptr) {
          accept_all();
          continue;
        }
        const auto e = evs[i].events;
        side->readable = side->readable || (e & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP));
        side->writable = side->writable || (e & (EPOLLOUT | EPOLLERR | EPOLLHUP));
        advance(side->c);
      }
    }
  }

 private:
  void accept_all() {
    for (;;) {
      const int fd = ::accept4(lfd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        return;  // EAGAIN: the edge is consumed
      }
      const int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      auto* c = new ep_conn;
      c->id = ++ids_;
      c->s[0] = {c, fd, true, true};  // look before any wait, as linesman does
      c->s[1] = {c, connect_upstream(up_), false, false};
      if (c->s[1].fd < 0) {
        finish(c);
        continue;
      }
      for (auto& s : c->s) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
        ev.data.ptr = &s;
        ::epoll_ctl(ep_, EPOLL_CTL_ADD, s.fd, &ev);
      }
      advance(c);
    }
  }

  void advance(ep_conn* c) {
    if (c->finished) {
      return;
    }
    if (!c->flight_read && c->s[0].readable) {
      c->flight = std::make_unique<char[]>(kFlight);
      const ssize_t n = ::recv(c->s[0].fd, c->flight.get(), kFlight, 0);
      if (n < 0 && errno == EAGAIN) {
        c->s[0].readable = false;
        c->flight.reset();
      } else if (n <= 0) {
        return finish(c);
      } else {
        c->flight_len = static_cast<std::size_t>(n);
        c->flight_read = true;
      }
    }
    if (!c->connected && c->s[1].writable) {
      int err = 0;
      socklen_t len = sizeof err;
      ::getsockopt(c->s[1].fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        return finish(c);
      }
      c->connected = true;
    }
    if (!c->relaying && c->flight_read && c->connected) {
      if (::send(c->s[1].fd, c->flight.get(), c->flight_len, MSG_NOSIGNAL) !=
          static_cast<ssize_t>(c->flight_len)) {
        return finish(c);  // (a short write of a first flight does not happen on loopback)
      }
      c->d[0].moved = c->flight_len;
      c->flight.reset();
      c->relaying = true;
    }
    if (!c->relaying) {
      return;
    }
    if (!pump(c, 0) || !pump(c, 1)) {
      return finish(c);
    }
    if (c->d[0].done && c->d[1].done) {
      finish(c);
    }
  }

  // pump: moves what it can from d's source to its destination; false on an error.
  bool pump(ep_conn* c, int d) {
    ep_dir& x = c->d[d];
    ep_side& src = c->s[d];
    ep_side& dst = c->s[1 - d];
    while (!x.done) {
      if (x.in_pipe == 0) {
        if (!src.readable) {
          return true;
        }
        if (x.pipe[0] < 0 && ::pipe2(x.pipe.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
          return false;
        }
        const ssize_t n = ::splice(src.fd, nullptr, x.pipe[1], nullptr, kChunk,
                                   SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
        if (n < 0 && errno == EAGAIN) {
          src.readable = false;
          return true;
        }
        if (n < 0) {
          return false;
        }
        if (n == 0) {
          ::shutdown(dst.fd, SHUT_WR);
          x.done = true;
          return true;
        }
        x.in_pipe = static_cast<std::size_t>(n);
        x.moved += static_cast<std::uint64_t>(n);
      }
      if (!dst.writable) {
        return true;
      }
      const ssize_t m = ::splice(x.pipe[0], nullptr, dst.fd, nullptr, x.in_pipe,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (m < 0 && errno == EAGAIN) {
        dst.writable = false;
        return true;
      }
      if (m < 0) {
        return false;
      }
      x.in_pipe -= static_cast<std::size_t>(m);
    }
    return true;
  }

  void finish(ep_conn* c) {
    c->finished = true;
    log_.line(c->id, c->d[0].moved, c->d[1].moved);
    for (auto& s : c->s) {
      if (s.fd >= 0) {
        ::close(s.fd);  // leaves the epoll set by itself
      }
    }
    for (auto& x : c->d) {
      if (x.pipe[0] >= 0) {
        ::close(x.pipe[0]);
        ::close(x.pipe[1]);
      }
    }
    // Events for this connection later in the same epoll_wait batch would name freed sides:
    // defer the delete to after the batch.
    dead_.push_back(c);
  }

  void reap() {
    for (auto* c : dead_) {
      delete c;
    }
    dead_.clear();
  }

  int ep_;
  int lfd_;
  int up_;
  logger log_;
  std::uint64_t ids_ = 0;
  std::vector<ep_conn*> dead_;
};

// ---- asio mode -------------------------------------------------------------------------------

using asio::ip::tcp;
constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

struct as_conn;
struct as_relay {
  as_conn* c = nullptr;
  linesman::proxy::tcp_socket* src = nullptr;
  linesman::proxy::tcp_socket* dst = nullptr;
  std::array<int, 2> pipe{-1, -1};
  std::size_t in_pipe = 0;
  std::uint64_t moved = 0;
  bool done = false;
  void step();
  // wait: one async_wait, then step() again, or the end on an error (as linesman's relay does).
  void wait(linesman::proxy::tcp_socket& s, tcp::socket::wait_type what);
  void end();
};
struct as_conn {
  std::uint64_t id = 0;
  linesman::proxy::tcp_socket client;
  linesman::proxy::tcp_socket up;
  std::array<as_relay, 2> r;
  const logger* log = nullptr;
  explicit as_conn(asio::io_context& io) : client(io), up(io) {}
  void relay_ended() {
    if (r[0].done && r[1].done) {
      log->line(id, r[0].moved, r[1].moved);
      for (auto& x : r) {
        if (x.pipe[0] >= 0) {
          ::close(x.pipe[0]);
          ::close(x.pipe[1]);
        }
      }
      delete this;
    }
  }
};

void as_relay::end() {
  done = true;
  c->relay_ended();
}

void as_relay::wait(linesman::proxy::tcp_socket& s, tcp::socket::wait_type what) {
  s.async_wait(what, [this](std::error_code ec) {
    if (ec) {
      return end();
    }
    step();
  });
}

void as_relay::step() {
  for (;;) {
    if (in_pipe == 0) {
      if (pipe[0] < 0 && ::pipe2(pipe.data(), O_NONBLOCK | O_CLOEXEC) != 0) {
        return end();
      }
      const ssize_t n = ::splice(src->native_handle(), nullptr, pipe[1], nullptr, kChunk,
                                 SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n < 0 && errno == EAGAIN) {
        return wait(*src, tcp::socket::wait_read);
      }
      if (n <= 0) {
        std::error_code ignored;
        dst->shutdown(tcp::socket::shutdown_send, ignored);
        return end();
      }
      in_pipe = static_cast<std::size_t>(n);
      moved += static_cast<std::uint64_t>(n);
    }
    const ssize_t m = ::splice(pipe[0], nullptr, dst->native_handle(), nullptr, in_pipe,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m < 0 && errno == EAGAIN) {
      return wait(*dst, tcp::socket::wait_write);
    }
    if (m < 0) {
      return end();
    }
    in_pipe -= static_cast<std::size_t>(m);
  }
}

asio::awaitable<void> as_serve(as_conn* c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  std::array<char, kFlight> flight;  // (linesman reads into a worker scratch, then a buffer)
  ssize_t n = ::recv(c->client.native_handle(), flight.data(), flight.size(), MSG_DONTWAIT);
  if (n < 0 && errno == EAGAIN) {
    auto [ec] = co_await c->client.async_wait(tcp::socket::wait_read, kTuple);
    n = ec ? -1 : ::recv(c->client.native_handle(), flight.data(), flight.size(), MSG_DONTWAIT);
  }
  auto [wec] = co_await c->up.async_wait(tcp::socket::wait_write, kTuple);
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(c->up.native_handle(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (n <= 0 || wec || err != 0 ||
      ::send(c->up.native_handle(), flight.data(), static_cast<std::size_t>(n), MSG_NOSIGNAL) !=
          n) {
    c->r[0].done = c->r[1].done = true;
    c->relay_ended();
    co_return;
  }
  c->r[0] = {c, &c->client, &c->up};
  c->r[1] = {c, &c->up, &c->client};
  c->r[0].moved = static_cast<std::uint64_t>(n);
  c->r[0].step();
  c->r[1].step();
}

void run_asio(int listen_port, int up_port, const logger& log) {
  asio::io_context io(1);
  tcp::acceptor acc(io,
                    {asio::ip::make_address("127.0.0.1"), static_cast<std::uint16_t>(listen_port)});
  acc.non_blocking(true);
  std::uint64_t ids = 0;
  asio::co_spawn(
      io,
      [&]() -> asio::awaitable<void> {
        for (;;) {
          auto* c = new as_conn(io);
          c->id = ++ids;
          c->log = &log;
          tcp::endpoint peer;
          const auto ec = linesman::proxy::accept_fresh(acc, c->client, peer);  // as linesman
          if (ec) {
            delete c;
            co_await acc.async_wait(tcp::acceptor::wait_read, kTuple);
            continue;
          }
          c->client.set_option(tcp::no_delay(true));
          // The upstream socket as linesman opens it (proxy/fresh_socket.hpp: no ioctl).
          if (linesman::proxy::open_fresh(c->up, tcp::v4())) {
            delete c;
            continue;
          }
          c->up.set_option(tcp::no_delay(true));
          const auto a = loopback(up_port);
          if (::connect(c->up.native_handle(), reinterpret_cast<const sockaddr*>(&a), sizeof a) !=
                  0 &&
              errno != EINPROGRESS) {
            delete c;
            continue;
          }
          asio::co_spawn(io, as_serve(c), asio::detached);
          co_await asio::post(io, asio::use_awaitable);
        }
      },
      asio::detached);
  io.run();
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode;
  int listen_port = 0;
  int up_port = 0;
  std::string log_path;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--mode") {
      mode = argv[i + 1];
    } else if (k == "--listen") {
      listen_port = std::atoi(argv[i + 1]);
    } else if (k == "--upstream") {
      up_port = std::atoi(argv[i + 1]);
    } else if (k == "--log") {
      log_path = argv[i + 1];
    }
  }
  if ((mode != "asio" && mode != "epoll") || listen_port <= 0 || up_port <= 0) {
    std::fprintf(
        stderr, "usage: reactor_ab --mode asio|epoll --listen PORT --upstream PORT [--log FILE]\n");
    return 2;
  }
  ::signal(SIGPIPE, SIG_IGN);
  logger log;
  if (!log_path.empty()) {
    log.f = std::fopen(log_path.c_str(), "a");
    static std::array<char, 65536> buf;
    std::setvbuf(log.f, buf.data(), _IOFBF, buf.size());
  }
  if (mode == "epoll") {
    epoll_loop(listen_port, up_port, log).run();
  } else {
    run_asio(listen_port, up_port, log);
  }
}
