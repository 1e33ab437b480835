#include "proxy/port_owner.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <dirent.h>

namespace linesman::proxy {
namespace {

constexpr const char* kListenState = "0A";  // TCP_LISTEN in /proc/net/tcp

std::optional<std::uint64_t> scan(const char* file, std::uint16_t port) {
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);  // header
  while (std::getline(in, line)) {
    // "  sl  local_address rem_address   st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout
    // inode"
    std::istringstream ss(line);
    std::string sl, local, remote, st, queues, timer, retr, uid, timeout;
    std::uint64_t inode = 0;
    if (!(ss >> sl >> local >> remote >> st >> queues >> timer >> retr >> uid >> timeout >>
          inode)) {
      continue;
    }
    const auto colon = local.rfind(':');
    if (colon == std::string::npos || st != kListenState) {
      continue;
    }
    unsigned long p = 0;
    try {
      p = std::stoul(local.substr(colon + 1), nullptr, 16);
    } catch (const std::exception&) {
      continue;
    }
    if (p == port && inode != 0) {
      return inode;
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::uint64_t> find_listen_inode(std::uint16_t port) {
  if (auto i = scan("/proc/net/tcp", port)) {
    return i;
  }
  return scan("/proc/net/tcp6", port);
}

std::optional<port_holder> find_port_owner(std::uint16_t port) {
  const auto inode = find_listen_inode(port);
  if (!inode) {
    return std::nullopt;
  }
  const std::string want = "socket:[" + std::to_string(*inode) + "]";
  DIR* proc = ::opendir("/proc");
  if (proc == nullptr) {
    return std::nullopt;
  }
  std::optional<port_holder> found;
  while (!found) {
    const dirent* de = ::readdir(proc);
    if (de == nullptr) {
      break;
    }
    const std::string pid_text = de->d_name;
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) {
      continue;
    }
    const std::string fd_dir = "/proc/" + pid_text + "/fd";
    DIR* fds = ::opendir(fd_dir.c_str());
    if (fds == nullptr) {
      continue;  // gone, or not ours to look at
    }
    while (const dirent* fe = ::readdir(fds)) {
      if (fe->d_name[0] == '.') {
        continue;
      }
      char target[64] = {};
      const std::string link = fd_dir + "/" + fe->d_name;
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      if (n > 0 && want == std::string_view(target, static_cast<std::size_t>(n))) {
        port_holder h;
        h.pid = std::stoi(pid_text);
        std::ifstream comm("/proc/" + pid_text + "/comm");
        std::getline(comm, h.comm);
        found = h;
        break;
      }
    }
    ::closedir(fds);
  }
  ::closedir(proc);
  return found;
}

}  // namespace linesman::proxy
