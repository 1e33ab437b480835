// port_owner: which program holds a TCP port in LISTEN state, the way `ss -tlnp` finds it:
// /proc/net/tcp{,6} gives the socket inode, /proc/PID/fd links name it, /proc/PID/comm names the
// program. Control plane only (used for the "address already in use" message).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace linesman::proxy {

struct port_holder {
  int pid = 0;
  std::string comm;  // program name from /proc/PID/comm
};

// find_port_owner: the first process holding a listening socket on `port`. Returns nullopt when
// none is found or /proc hides it (another user's process without privileges). Never throws.
std::optional<port_holder> find_port_owner(std::uint16_t port);

// listening_inodes: the inodes of sockets listening on `port` (both files); for tests.
std::optional<std::uint64_t> find_listen_inode(std::uint16_t port);

}  // namespace linesman::proxy
