// protocol: what a peer's first bytes are, as named in the access log's `first_flight.protocol`.
#pragma once

#include <cstdint>
#include <string_view>

namespace linesman::tls {

enum class protocol : std::uint8_t {
  none,     // the peer sent nothing
  unknown,  // bytes that match nothing we know
  tls,
  http1,
  http2,
  postgres,
  postgres_ssl_request,
  redis,
  ssh,
  mysql,
  smtp,
  imap,
  pop3,
  ftp,
  proxy_v1,
  proxy_v2,
};

// protocol_name: the schema's string for `p` ("tls", "postgres_ssl_request", ...). Never empty.
std::string_view protocol_name(protocol p);

// direction: who sent the bytes being read; detection differs (a request vs. a greeting).
enum class direction : std::uint8_t { client_to_server, server_to_client };

}  // namespace linesman::tls
