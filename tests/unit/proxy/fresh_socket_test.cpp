// proxy/fresh_socket.hpp: sockets made non-blocking by the kernel call that created them, and
// handed to Asio so that it neither sets the mode again nor loses track of it.
#include "proxy/fresh_socket.hpp"

#include <fcntl.h>

#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

bool fd_flag(int fd, int cmd, int flag) { return (::fcntl(fd, cmd) & flag) != 0; }

TEST(FreshSocket, AcceptedAndOpenedSocketsAreNonBlockingAndCloseOnExec) {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, {asio::ip::make_address("127.0.0.1"), 0});
  acc.non_blocking(true);
  tcp_socket up(io);
  ASSERT_FALSE(open_fresh(up, asio::ip::tcp::v4()));
  EXPECT_TRUE(fd_flag(up.native_handle(), F_GETFL, O_NONBLOCK));
  EXPECT_TRUE(fd_flag(up.native_handle(), F_GETFD, FD_CLOEXEC));
  // Asio knows the mode: an async operation will not set it again.
  EXPECT_TRUE(up.native_non_blocking());

  tcp_socket accepted(io);
  asio::ip::tcp::endpoint peer;
  EXPECT_EQ(accept_fresh(acc, accepted, peer), asio::error::would_block);  // empty backlog
  up.non_blocking(false);
  up.connect(acc.local_endpoint());
  ASSERT_FALSE(accept_fresh(acc, accepted, peer));
  EXPECT_EQ(peer, up.local_endpoint());  // filled in by accept4, as getpeername would
  EXPECT_TRUE(fd_flag(accepted.native_handle(), F_GETFL, O_NONBLOCK));
  EXPECT_TRUE(fd_flag(accepted.native_handle(), F_GETFD, FD_CLOEXEC));
  EXPECT_TRUE(accepted.native_non_blocking());

  // Asynchronous reads still wait for readiness through the reactor.
  std::array<char, 5> got{};
  std::size_t n = 0;
  asio::async_read(accepted, asio::buffer(got), [&](std::error_code ec, std::size_t m) {
    EXPECT_FALSE(ec);
    n = m;
  });
  io.poll();
  EXPECT_EQ(n, 0u);  // nothing sent yet: the read is parked, not failed with would_block
  asio::write(up, asio::buffer("hello", 5));
  io.run_for(std::chrono::seconds(2));
  EXPECT_EQ(n, 5u);
  EXPECT_EQ(std::string(got.data(), 5), "hello");
}

TEST(FreshSocket, OpenFreshReplacesAnOpenSocket) {
  asio::io_context io;
  tcp_socket s(io);
  ASSERT_FALSE(open_fresh(s, asio::ip::tcp::v4()));
  const int first = s.native_handle();
  ASSERT_FALSE(open_fresh(s, asio::ip::tcp::v6()));
  EXPECT_TRUE(s.is_open());
  EXPECT_EQ(::fcntl(first, F_GETFD) == -1 || s.native_handle() == first, true);
}

}  // namespace
}  // namespace linesman::proxy
