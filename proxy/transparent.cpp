#include "proxy/transparent.hpp"

#include "proxy/connection.hpp"
#include "proxy/server.hpp"

#include <arpa/inet.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6/ip6_tables.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <array>

namespace linesman::proxy {

std::optional<endpoint_value> original_dst(int fd, bool v6) {
  endpoint_value v;
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (v6) {
    sockaddr_in6 sa{};
    socklen_t len = sizeof(sa);
    if (::getsockopt(fd, SOL_IPV6, IP6T_SO_ORIGINAL_DST, &sa, &len) != 0 ||
        inet_ntop(AF_INET6, &sa.sin6_addr, text.data(), text.size()) == nullptr) {
      return std::nullopt;
    }
    v.port = ntohs(sa.sin6_port);
  } else {
    sockaddr_in sa{};
    socklen_t len = sizeof(sa);
    if (::getsockopt(fd, SOL_IP, SO_ORIGINAL_DST, &sa, &len) != 0 ||
        inet_ntop(AF_INET, &sa.sin_addr, text.data(), text.size()) == nullptr) {
      return std::nullopt;
    }
    v.port = ntohs(sa.sin_port);
  }
  v.ip = text.data();
  return v;
}

bool redirect_loops(const endpoint_value& original, const endpoint_value& local) {
  return original.ip == local.ip && original.port == local.port;
}

bool connection::take_original_dst(host_port& out) {
  std::error_code ec;
  const auto local = client().local_endpoint(ec);
  const bool v6 = !ec && local.address().is_v6() && !local.address().to_v6().is_v4_mapped();
  const auto od = original_dst(client().native_handle(), v6);
  if (od) {
    record_.original_dst = *od;
  }
  // Without a redirect the original destination is the listener itself: connecting there would
  // loop back into linesman.
  const bool loop = od && redirect_loops(*od, record_.local);
  if (!od || loop) {
    record_.transparent_error = loop ? "redirect_loop" : "no_original_dst";
    facts_.client_end = side_end::proxy;
    facts_.first_close = stop_by::proxy;
    end_before_stream(stop_phase::route);
    return false;
  }
  out.host = od->ip;
  out.port = od->port;
  out.text = format_endpoint(out.host, out.port);
  return true;
}

}  // namespace linesman::proxy
