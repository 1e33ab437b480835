// port_owner: the one scanner of this machine's listening TCP sockets, the way `ss -tlnp` finds
// them: /proc/net/tcp{,6} gives each LISTEN socket's address and inode, /proc/PID/fd links name
// the process holding the inode, /proc/PID/comm the program. Control plane only: the proxy's
// "address already in use (held by ...)" message and tools/doctor's port_in_use check.
// Standard library only (target linesman_proxy_base: no Asio).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace linesman::proxy {

// listening_socket: a TCP socket in LISTEN state.
struct listening_socket {
  std::string ip;  // "0.0.0.0", "::", "127.0.0.1", ...
  std::uint16_t port = 0;
  std::uint64_t inode = 0;
  int pid = 0;  // 0 when the owner could not be seen (another user's process, no privileges)
  std::string comm;
};

// read_listening_sockets: TCP LISTEN sockets from `proc`/net/tcp{,6} (IPv4 first), owners from
// `proc`/PID/fd. With `ports` non-empty only those ports are kept, so the walk over every
// process's fds is skipped when nothing listens there. Lines it does not understand are skipped;
// never throws.
std::vector<listening_socket> read_listening_sockets(const std::string& proc = "/proc",
                                                     const std::vector<std::uint16_t>& ports = {});

struct port_holder {
  int pid = 0;
  std::string comm;  // program name from /proc/PID/comm
};

// find_port_owner: the first process seen holding a listening socket on `port`. Returns nullopt
// when none is found or /proc hides it. Never throws.
std::optional<port_holder> find_port_owner(std::uint16_t port);

}  // namespace linesman::proxy
