// splice_relay_test: the callback splice loop of the stream phase (proxy/splice_relay.hpp) over
// real loopback TCP connections: bytes arrive identical and counted, a FIN ends it with src_eof,
// a reset with src_reset, the abort flag with cancelled, a waiting relay holds no pipe, and a
// source that is always readable does not keep the thread.
#include "proxy/splice_relay.hpp"

#include <sys/socket.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include <asio.hpp>
#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

using tcp = asio::ip::tcp;

// loopback_pair: two connected loopback sockets (a, b), both non-blocking.
struct loopback_pair {
  tcp_socket a;
  tcp_socket b;
};

loopback_pair make_pair(asio::io_context& io) {
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0));
  tcp_socket a(io);
  a.connect(acc.local_endpoint());
  tcp_socket b(io);
  acc.accept(b);
  a.non_blocking(true);
  b.non_blocking(true);
  return {std::move(a), std::move(b)};
}

// The relay under test moves in.b -> out.a: the test writes into in.a and reads out.b.
struct fixture {
  asio::io_context io;
  loopback_pair in = make_pair(io);
  loopback_pair out = make_pair(io);
  pipe_pool pool;
  std::uint64_t from = 0;
  std::uint64_t to = 0;
  std::chrono::steady_clock::time_point activity{};
  bool abort = false;
  splice_relay relay;
  std::optional<relay_result> ended;

  void start() {
    relay.start(
        in.b, out.a, pool, relay_counters{&from, &to, &activity, &abort},
        [](void* self, int tag, const relay_result& r) {
          EXPECT_EQ(tag, 7);
          auto* f = static_cast<fixture*>(self);
          EXPECT_FALSE(f->ended.has_value()) << "on_end called twice";
          f->ended = r;
        },
        this, 7);
  }

  // run_until: runs the loop until `done()` or 10 s (bounded, never hangs a test run).
  template <class Pred>
  void run_until(Pred done) {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done() && std::chrono::steady_clock::now() < end) {
      io.run_for(std::chrono::milliseconds(10));
      io.restart();
    }
  }
};

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::uint8_t>((i * 131 + i / 251) & 0xff);
  }
  return v;
}

TEST(SpliceRelay, ForwardsBytesIdenticallyAndEndsOnFin) {
  fixture f;
  f.start();
  const auto data = pattern(3 * 1024 * 1024 + 17);
  std::vector<std::uint8_t> got;
  got.reserve(data.size());
  std::size_t sent = 0;
  bool out_eof = false;
  std::array<std::uint8_t, 65536> buf{};
  // Writer and reader run on the same loop as the relay, non-blocking, so flow control is real.
  std::function<void()> write_more = [&] {
    while (sent < data.size()) {
      std::error_code ec;
      const auto n = f.in.a.write_some(asio::buffer(data.data() + sent, data.size() - sent), ec);
      if (ec == asio::error::would_block) {
        f.in.a.async_wait(tcp::socket::wait_write, [&](std::error_code) { write_more(); });
        return;
      }
      ASSERT_FALSE(ec) << ec.message();
      sent += n;
    }
    f.in.a.shutdown(tcp::socket::shutdown_send);
  };
  std::function<void()> read_more = [&] {
    for (;;) {
      std::error_code ec;
      const auto n = f.out.b.read_some(asio::buffer(buf), ec);
      if (ec == asio::error::would_block) {
        f.out.b.async_wait(tcp::socket::wait_read, [&](std::error_code) { read_more(); });
        return;
      }
      if (ec == asio::error::eof) {
        out_eof = true;
        return;
      }
      ASSERT_FALSE(ec) << ec.message();
      got.insert(got.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    }
  };
  write_more();
  read_more();
  f.run_until([&] { return f.ended.has_value() && got.size() == data.size(); });
  ASSERT_TRUE(f.ended.has_value());
  EXPECT_EQ(f.ended->end, relay_end::src_eof);
  EXPECT_EQ(f.from, data.size());
  EXPECT_EQ(f.to, data.size());
  EXPECT_TRUE(got == data) << "forwarded bytes differ";
  EXPECT_FALSE(out_eof) << "the relay itself must not pass the FIN on (its owner does)";
}

TEST(SpliceRelay, WaitingHoldsNoPipeAndAbortCancels) {
  fixture f;
  f.start();
  const std::array<std::uint8_t, 5> hello{'h', 'e', 'l', 'l', 'o'};
  asio::write(f.in.a, asio::buffer(hello));
  std::array<std::uint8_t, 16> buf{};
  std::size_t got = 0;
  f.run_until([&] {
    std::error_code ec;
    got += f.out.b.read_some(asio::buffer(buf.data() + got, buf.size() - got), ec);
    return got == hello.size();
  });
  ASSERT_EQ(got, hello.size());
  EXPECT_FALSE(f.ended.has_value());
  // The relay now waits for more: the pipe it used is back in the pool, so the next take()
  // returns it without opening a new one (same descriptors).
  int err = 0;
  pipe_fds p = f.pool.take(err);
  ASSERT_TRUE(p.valid());
  const int r = p.read_end();
  f.pool.give(std::move(p));
  pipe_fds again = f.pool.take(err);
  EXPECT_EQ(again.read_end(), r);
  f.pool.give(std::move(again));
  // The owner's abort: set the flag and cancel the socket; the relay ends with cancelled.
  f.abort = true;
  f.in.b.cancel();
  f.run_until([&] { return f.ended.has_value(); });
  ASSERT_TRUE(f.ended.has_value());
  EXPECT_EQ(f.ended->end, relay_end::cancelled);
}

TEST(SpliceRelay, ResetOfTheSourceEndsWithSrcReset) {
  fixture f;
  f.start();
  f.in.a.set_option(asio::socket_base::linger(true, 0));
  f.in.a.close();  // RST
  f.run_until([&] { return f.ended.has_value(); });
  ASSERT_TRUE(f.ended.has_value());
  EXPECT_EQ(f.ended->end, relay_end::src_reset);
  EXPECT_EQ(f.ended->err, ECONNRESET);
}

TEST(SpliceRelay, AnAlwaysReadableSourceDoesNotKeepTheThread) {
  fixture f;
  // Queue as much as the source connection takes (bounded), then start: start() runs the relay
  // at once, and it must come back after a burst (kBurstBytes, crossed by at most one chunk of
  // at most the pipe's size, 1 MiB) with bytes still readable, not loop until the source is
  // empty.
  const auto data = pattern(64 * 1024);
  std::size_t queued = 0;
  for (int i = 0; i < 1024; ++i) {
    std::error_code ec;
    const auto n = f.in.a.write_some(asio::buffer(data), ec);
    if (ec) {
      break;
    }
    queued += n;
  }
  constexpr std::size_t kMaxFirstBurst = splice_relay::kBurstBytes + (std::size_t{1} << 20);
  if (queued <= kMaxFirstBurst) {
    GTEST_SKIP() << "the loopback connection took only " << queued << " bytes";
  }
  f.start();
  EXPECT_GT(f.from, 0U);
  EXPECT_LE(f.from, kMaxFirstBurst);
  EXPECT_FALSE(f.ended.has_value());
  // The rest follows once the loop runs (the reader keeps the destination drained).
  std::array<std::uint8_t, 65536> buf{};
  std::size_t drained = 0;
  f.run_until([&] {
    std::error_code ec;
    drained += f.out.b.read_some(asio::buffer(buf), ec);
    return drained == queued;
  });
  EXPECT_EQ(drained, queued);
  EXPECT_EQ(f.from, queued);
}

}  // namespace
}  // namespace linesman::proxy
