#include "proxy/port_owner.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string_view>

namespace linesman::proxy {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view kListenState = "0A";  // TCP_LISTEN in /proc/net/tcp
constexpr int kMaxLines = 100000;                // per file: a bound, not a limit anyone meets

// hex_to_ip: /proc/net/tcp{,6}'s address column ("0100007F", 32 digits for IPv6) as text.
// Throws std::exception on digits it cannot read (the caller skips the line).
std::string hex_to_ip(std::string_view hex) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (hex.size() == 8) {
    in_addr a{};
    a.s_addr = static_cast<std::uint32_t>(std::stoul(std::string(hex), nullptr, 16));
    inet_ntop(AF_INET, &a, buf, sizeof buf);
  } else if (hex.size() == 32) {
    in6_addr a{};
    for (int w = 0; w < 4; ++w) {
      // Each 32-bit word is printed in host order, like the IPv4 form.
      const auto word =
          static_cast<std::uint32_t>(std::stoul(std::string(hex.substr(w * 8, 8)), nullptr, 16));
      std::memcpy(reinterpret_cast<unsigned char*>(&a) + w * 4, &word, 4);
    }
    inet_ntop(AF_INET6, &a, buf, sizeof buf);
    std::string s(buf);
    if (s.rfind("::ffff:", 0) == 0 && s.find('.') != std::string::npos) {
      return s.substr(7);  // v4-mapped
    }
    return s;
  }
  return buf;
}

// name_owners: fills pid/comm of the sockets in `out` from `proc`/PID/fd (first process wins).
void name_owners(const std::string& proc, std::vector<listening_socket>& out) {
  std::map<std::uint64_t, listening_socket*> by_inode;
  for (auto& l : out) {
    by_inode[l.inode] = &l;
  }
  std::error_code ec;
  for (auto pit = fs::directory_iterator(proc, ec); !ec && pit != fs::directory_iterator();
       pit.increment(ec)) {
    const auto pid_name = pit->path().filename().string();
    if (pid_name.empty() || !std::all_of(pid_name.begin(), pid_name.end(), ::isdigit)) {
      continue;
    }
    std::error_code fec;
    for (auto fit = fs::directory_iterator(pit->path() / "fd", fec);
         !fec && fit != fs::directory_iterator(); fit.increment(fec)) {
      std::error_code lec;
      const auto target = fs::read_symlink(fit->path(), lec).string();
      if (lec || target.rfind("socket:[", 0) != 0) {
        continue;  // gone, not ours to look at, or not a socket
      }
      std::uint64_t inode = 0;
      std::from_chars(target.data() + 8, target.data() + target.size(), inode);
      auto it = by_inode.find(inode);
      if (it == by_inode.end() || it->second->pid != 0) {
        continue;
      }
      it->second->pid = std::stoi(pid_name);
      std::ifstream comm(pit->path() / "comm");
      std::getline(comm, it->second->comm);
    }
  }
}

}  // namespace

std::vector<listening_socket> read_listening_sockets(const std::string& proc,
                                                     const std::vector<std::uint16_t>& ports) {
  std::vector<listening_socket> out;
  for (const char* f : {"/net/tcp", "/net/tcp6"}) {
    std::ifstream in(proc + f);
    std::string line;
    std::getline(in, line);  // header
    for (int n = 0; n < kMaxLines && std::getline(in, line); ++n) {
      // "sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode"
      std::istringstream ls(line);
      std::vector<std::string> cols;
      std::string c;
      while (cols.size() < 10 && ls >> c) {
        cols.push_back(c);
      }
      if (cols.size() < 10 || cols[3] != kListenState) {
        continue;
      }
      const auto colon = cols[1].find(':');
      if (colon == std::string::npos) {
        continue;
      }
      try {
        listening_socket l;
        l.ip = hex_to_ip(std::string_view(cols[1]).substr(0, colon));
        l.port = static_cast<std::uint16_t>(std::stoul(cols[1].substr(colon + 1), nullptr, 16));
        l.inode = std::stoull(cols[9]);
        if (ports.empty() || std::find(ports.begin(), ports.end(), l.port) != ports.end()) {
          out.push_back(std::move(l));
        }
      } catch (const std::exception&) {
        continue;  // a line we do not understand is not a listener we can name
      }
    }
  }
  if (!out.empty()) {
    name_owners(proc, out);
  }
  return out;
}

std::optional<port_holder> find_port_owner(std::uint16_t port) {
  for (const auto& l : read_listening_sockets("/proc", {port})) {
    if (l.pid != 0) {
      return port_holder{l.pid, l.comm};
    }
  }
  return std::nullopt;
}

}  // namespace linesman::proxy
