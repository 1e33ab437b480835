#include "proxy/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>

namespace linesman::proxy {

address_error parse_address(std::string_view text, const address_rules& rules, address_parts& out) {
  out = address_parts{};
  std::string_view a = text;
  if (a.empty()) {
    return address_error::empty;
  }
  if (a.find("://") != std::string_view::npos) {
    return address_error::url;
  }
  if (rules.protocol_suffix) {
    if (const auto slash = a.rfind('/'); slash != std::string_view::npos) {
      out.protocol = std::string(a.substr(slash + 1));
      if (out.protocol == "udp") {
        out.udp = true;
      } else if (out.protocol != "tcp") {
        return address_error::unknown_protocol;
      }
      a = a.substr(0, slash);
    }
  }
  std::string_view port;
  if (!a.empty() && a.front() == '[') {
    const auto close = a.find(']');
    if (close == std::string_view::npos) {
      return address_error::missing_bracket;
    }
    out.host = std::string(a.substr(1, close - 1));
    const auto rest = a.substr(close + 1);
    if (rest.empty()) {
      return address_error::no_port;
    }
    if (rest.front() != ':') {
      return address_error::after_bracket;
    }
    in6_addr a6{};
    if (::inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) {
      return address_error::not_ipv6;
    }
    port = rest.substr(1);
  } else {
    const auto colon = a.rfind(':');
    if (colon == std::string_view::npos) {
      return address_error::no_port;
    }
    if (a.find(':') != colon) {
      return address_error::ipv6_without_brackets;
    }
    out.host = std::string(a.substr(0, colon));
    port = a.substr(colon + 1);
  }
  if (out.host.empty() && !rules.empty_host) {
    return address_error::empty_host;
  }
  for (const char c : out.host) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '@') {
      return address_error::bad_host;
    }
  }
  out.port_text = std::string(port);
  if (port.empty()) {
    return address_error::empty_port;
  }
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec == std::errc::result_out_of_range) {
    return address_error::port_out_of_range;
  }
  if (ec != std::errc{} || end != port.data() + port.size()) {
    return address_error::port_not_number;
  }
  if (value > 65535 || (value == 0 && !rules.zero_port)) {
    return address_error::port_out_of_range;
  }
  out.port = static_cast<std::uint16_t>(value);
  return address_error::none;
}

bool is_port_error(address_error e) {
  return e == address_error::empty_port || e == address_error::port_not_number ||
         e == address_error::port_out_of_range;
}

std::string ipv4_text(std::uint32_t addr) {
  char out[15];  // "255.255.255.255": fits the string's inline buffer, no allocation
  std::size_t n = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    const unsigned v = (addr >> shift) & 0xffU;
    if (v >= 100) {
      out[n++] = static_cast<char>('0' + v / 100);
    }
    if (v >= 10) {
      out[n++] = static_cast<char>('0' + v / 10 % 10);
    }
    out[n++] = static_cast<char>('0' + v % 10);
    if (shift != 0) {
      out[n++] = '.';
    }
  }
  return {out, n};
}

}  // namespace linesman::proxy
