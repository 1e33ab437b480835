#include "proxy/fresh_socket.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

namespace linesman::proxy {
namespace {

// socket_state: the flags Asio keeps beside a socket's descriptor (asio/detail/socket_ops.hpp).
// basic_socket::impl_ is protected; a pointer to that member, taken in a derived class, reads it
// on any socket without casting the socket to a type it is not.
struct socket_state : tcp_socket {
  static auto& of(tcp_socket& s) { return (s.*(&socket_state::impl_)).get_implementation().state_; }
};

std::error_code adopt(tcp_socket& s, const asio::ip::tcp& protocol, int fd) {
  std::error_code ec;
  s.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return ec;
  }
  auto& state = socket_state::of(s);
  // Non-blocking since accept4/socket: no ioctl before the first operation. Never dup'ed: close
  // takes it out of the epoll set by itself, no EPOLL_CTL_DEL.
  state = static_cast<asio::detail::socket_ops::state_type>(
      (state | asio::detail::socket_ops::internal_non_blocking) &
      ~asio::detail::socket_ops::possible_dup);
  return {};
}

std::error_code last_error() { return {errno, asio::error::get_system_category()}; }

}  // namespace

std::error_code accept_fresh(asio::ip::tcp::acceptor& acc, tcp_socket& s,
                             asio::ip::tcp::endpoint& peer) {
  socklen_t len = static_cast<socklen_t>(peer.capacity());
  const int fd = ::accept4(acc.native_handle(), peer.data(), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (fd < 0) {
    return last_error();
  }
  peer.resize(len);
  return adopt(s, peer.protocol(), fd);
}

std::error_code open_fresh(tcp_socket& s, const asio::ip::tcp& protocol) {
  if (s.is_open()) {
    std::error_code ignored;
    s.close(ignored);
  }
  const int fd =
      ::socket(protocol.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol.protocol());
  if (fd < 0) {
    return last_error();
  }
  return adopt(s, protocol, fd);
}

void tune_stream(tcp_socket& s) {
  std::error_code ignored;
  if (!s.native_non_blocking()) {
    s.non_blocking(true, ignored);
  }
  s.set_option(asio::ip::tcp::no_delay(true), ignored);
}

}  // namespace linesman::proxy
