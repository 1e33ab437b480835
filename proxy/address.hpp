// address: the one host:port parser of linesman. The proxy's --listen/--upstream/--route/--admin
// flags and YAML keys (proxy/config.hpp) and tools/doctor's reading of Traefik's entrypoint and
// service addresses split addresses here; each caller words its own message from the error.
// Standard library and inet_pton only (target linesman_proxy_base: no Asio).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace linesman::proxy {

// address_error: the first problem parse_address found, none when the address is usable.
enum class address_error : std::uint8_t {
  none,
  empty,                  // ""
  url,                    // "tcp://db:5432": a scheme
  unknown_protocol,       // "db:5432/sctp" (only with address_rules::protocol_suffix)
  missing_bracket,        // "[::1:80"
  after_bracket,          // "[::1]80"
  not_ipv6,               // "[db]:80": brackets hold an IPv6 literal
  no_port,                // "db", "[::1]"
  ipv6_without_brackets,  // "::1:5432"
  empty_host,             // ":80" (unless address_rules::empty_host)
  bad_host,               // a control character, space, '/' or '@' in the host
  empty_port,             // "db:"
  port_not_number,        // "db:postgres" (named ports are not resolved)
  port_out_of_range,      // "db:70000", "db:0" (unless address_rules::zero_port)
};

// address_rules: what a caller accepts beyond HOST:PORT and [IPv6]:PORT.
struct address_rules {
  bool empty_host = false;       // ":443" means all addresses (Traefik entrypoints)
  bool zero_port = false;        // port 0 means any (listen addresses)
  bool protocol_suffix = false;  // "/tcp" or "/udp" after the port (Traefik entrypoints)
};

// address_parts: an address split. On an error, the parts split before it (for the message).
struct address_parts {
  std::string host;       // without brackets; "" = all addresses (address_rules::empty_host)
  std::string port_text;  // the port as written
  std::uint16_t port = 0;
  bool udp = false;      // "/udp" (address_rules::protocol_suffix)
  std::string protocol;  // the suffix after '/', as written ("" when none)
};

// parse_address: splits `text` under `rules` into `out`. Returns address_error::none when the
// address is usable. Checks in this order: empty, scheme, suffix, brackets, host, port. Never
// throws; resolves nothing.
address_error parse_address(std::string_view text, const address_rules& rules, address_parts& out);

// is_port_error: whether `e` is about the port (the rest of the address was well formed).
bool is_port_error(address_error e);

// ipv4_text: an IPv4 address (host byte order) in dotted decimal, as inet_ntop(3) writes it,
// without inet_ntop's sprintf (three addresses per connection go into its record).
std::string ipv4_text(std::uint32_t addr);

}  // namespace linesman::proxy
