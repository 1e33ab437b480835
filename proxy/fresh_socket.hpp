// fresh_socket: descriptors linesman creates itself, already non-blocking and close-on-exec
// (accept4 and socket with SOCK_NONBLOCK | SOCK_CLOEXEC), handed to Asio without the two system
// calls Asio would add: an ioctl(FIONBIO) before the first operation (Asio cannot tell that the
// descriptor is non-blocking already) and an epoll_ctl(EPOLL_CTL_DEL) at close (Asio assumes an
// adopted descriptor may have been dup'ed, so closing it might not leave the epoll set). Neither
// holds for a descriptor made here and owned only by the socket it is given to.
//
// Ownership: on success the socket owns the descriptor; on failure the descriptor is closed.
#pragma once

#include <chrono>
#include <system_error>

#include <asio/basic_waitable_timer.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

namespace linesman::proxy {

// tcp_socket, steady_timer: a connection's sockets and timer, bound to its worker's io_context
// executor rather than to the type-erased asio::any_io_executor. Each is 48 bytes smaller, and
// so is every operation pending on it (no type-erased executor copy in the operation): an idle
// connection is mostly such state (bench/results/2026-12-03-core3/README.md).
using io_executor = asio::io_context::executor_type;
using tcp_socket = asio::basic_stream_socket<asio::ip::tcp, io_executor>;
using steady_timer =
    asio::basic_waitable_timer<std::chrono::steady_clock,
                               asio::wait_traits<std::chrono::steady_clock>, io_executor>;

// accept_fresh: accept4 on the (non-blocking) acceptor into `s`, `peer` filled in by the kernel
// (no getpeername). would_block when the backlog is empty; errors as system error codes.
std::error_code accept_fresh(asio::ip::tcp::acceptor& acc, tcp_socket& s,
                             asio::ip::tcp::endpoint& peer);

// open_fresh: a new non-blocking TCP socket of `protocol` in `s` (closed first if open).
std::error_code open_fresh(tcp_socket& s, const asio::ip::tcp& protocol);

// tune_stream: what every relayed socket needs: O_NONBLOCK (splice(2) needs it on both sockets;
// set only when Asio does not already know it is, so a fresh or connected socket costs no ioctl)
// and TCP_NODELAY (a transparent proxy must not add latency to writes the peers already timed).
void tune_stream(tcp_socket& s);

}  // namespace linesman::proxy
