// Detection of a real Redis server's replies (redis-server on 127.0.0.1, a free port, stopped by
// PID): the first line is shown, an echo of the caller's arguments is cut, and no AUTH argument
// ever reaches a summary. Skipped when redis-server is not installed.
#include "tls/detect.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::tls {
namespace {

constexpr const char* kRedis = "/usr/bin/redis-server";

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

int connect_to(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// exchange: send `request` on a fresh connection, read until the reply's first line ends or
// 3 seconds pass.
std::vector<std::uint8_t> exchange(std::uint16_t port, const std::string& request) {
  std::vector<std::uint8_t> reply;
  const int fd = connect_to(port);
  if (fd < 0) {
    return reply;
  }
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (int i = 0; i < 100 && std::chrono::steady_clock::now() < deadline; ++i) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) {
      continue;
    }
    std::uint8_t buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      break;
    }
    reply.insert(reply.end(), buf, buf + n);
    if (std::find(reply.begin(), reply.end(), '\n') != reply.end()) {
      break;
    }
  }
  ::close(fd);
  return reply;
}

class RedisPeer : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kRedis)) {
      GTEST_SKIP() << "redis-server not installed";
    }
    port_ = free_port();
    const std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl(kRedis, kRedis, "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
              "--appendonly", "no", "--dir", "/tmp", "--loglevel", "warning", nullptr);
      ::_exit(127);
    }
    ASSERT_GT(pid_, 0);
    for (int i = 0; i < 100; ++i) {
      const int fd = connect_to(port_);
      if (fd >= 0) {
        ::close(fd);
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    FAIL() << "redis-server did not listen on " << port_;
  }

  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
  }

  detection reply_to(const std::string& request) {
    const std::vector<std::uint8_t> reply = exchange(port_, request);
    EXPECT_FALSE(reply.empty()) << request;
    return detect_first_flight(reply, direction::server_to_client);
  }

  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(RedisPeer, RepliesAreNamedWithoutTheCallersArguments) {
  const detection pong = reply_to("*1\r\n$4\r\nPING\r\n");
  EXPECT_EQ(pong.proto, protocol::redis);
  EXPECT_TRUE(pong.complete);
  EXPECT_EQ(pong.summary.view(), "+PONG");

  // No password configured: Redis refuses AUTH; its message must not carry the argument.
  const detection auth = reply_to("*2\r\n$4\r\nAUTH\r\n$6\r\ns3cr3t\r\n");
  EXPECT_EQ(auth.proto, protocol::redis);
  EXPECT_EQ(auth.summary.view().substr(0, 5), "-ERR ");
  EXPECT_EQ(auth.summary.view().find("s3cr3t"), std::string_view::npos);

  // An unknown command: Redis echoes the arguments; the summary stops before them.
  const detection unknown = reply_to("*2\r\n$3\r\nFOO\r\n$6\r\ns3cr3t\r\n");
  EXPECT_EQ(unknown.proto, protocol::redis);
  EXPECT_EQ(unknown.summary.view().find("s3cr3t"), std::string_view::npos)
      << unknown.summary.view();
  EXPECT_NE(unknown.summary.view().find("unknown command"), std::string_view::npos)
      << unknown.summary.view();

  // RESP3: HELLO 3 answers with a map.
  const detection hello = reply_to("*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
  EXPECT_EQ(hello.proto, protocol::redis);
  EXPECT_EQ(hello.summary.view(), "RESP map reply");

  // Inline commands, as telnet users type them.
  const detection inline_ping = reply_to("PING\r\n");
  EXPECT_EQ(inline_ping.summary.view(), "+PONG");
}

}  // namespace
}  // namespace linesman::tls
