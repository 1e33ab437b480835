#include "proxy/port_owner.hpp"

#include <unistd.h>

#include <fstream>
#include <string>

#include <asio.hpp>
#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

std::string own_comm() {
  std::ifstream in("/proc/self/comm");
  std::string s;
  std::getline(in, s);
  return s;
}

TEST(PortOwner, FindsThisProcessHoldingAListeningSocket) {
  asio::io_context io;
  asio::ip::tcp::acceptor acc(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  const auto port = acc.local_endpoint().port();
  const auto owner = find_port_owner(port);
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->pid, ::getpid());
  EXPECT_EQ(owner->comm, own_comm());
}

TEST(PortOwner, FindsIpv6Listeners) {
  asio::io_context io;
  std::error_code ec;
  asio::ip::tcp::acceptor acc(io);
  acc.open(asio::ip::tcp::v6(), ec);
  if (!ec) {
    acc.bind(asio::ip::tcp::endpoint(asio::ip::make_address("::1"), 0), ec);
  }
  if (ec) {
    GTEST_SKIP() << "no IPv6 loopback here: " << ec.message();
  }
  acc.listen();
  const auto owner = find_port_owner(acc.local_endpoint().port());
  ASSERT_TRUE(owner.has_value());
  EXPECT_EQ(owner->pid, ::getpid());
}

TEST(PortOwner, NothingForAPortNobodyListensOn) {
  asio::io_context io;
  std::uint16_t port = 0;
  {
    asio::ip::tcp::acceptor acc(io,
                                asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = acc.local_endpoint().port();
  }
  // A connected (not listening) socket on the port must not count either.
  EXPECT_FALSE(find_port_owner(port).has_value());
}

}  // namespace
}  // namespace linesman::proxy
