#include "tls/protocol.hpp"

namespace linesman::tls {

std::string_view protocol_name(protocol p) {
  switch (p) {
    case protocol::none:
      return "none";
    case protocol::unknown:
      return "unknown";
    case protocol::tls:
      return "tls";
    case protocol::http1:
      return "http1";
    case protocol::http2:
      return "http2";
    case protocol::postgres:
      return "postgres";
    case protocol::postgres_ssl_request:
      return "postgres_ssl_request";
    case protocol::redis:
      return "redis";
    case protocol::ssh:
      return "ssh";
    case protocol::mysql:
      return "mysql";
    case protocol::smtp:
      return "smtp";
    case protocol::imap:
      return "imap";
    case protocol::pop3:
      return "pop3";
    case protocol::ftp:
      return "ftp";
    case protocol::proxy_v1:
      return "proxy_v1";
    case protocol::proxy_v2:
      return "proxy_v2";
  }
  return "unknown";
}

}  // namespace linesman::tls
