#include "tls/verdict.hpp"

#include <string_view>

namespace linesman::tls {
namespace {

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// reply_code_refuses: "554 ...", "421-...": an SMTP/FTP-style reply code in the 4xx/5xx classes.
// (Summary text, not wire bytes: string_view searches only, no indexing.)
bool reply_code_refuses(std::string_view s) {
  return s.size() >= 3 && s.substr(0, 1).find_first_of("45") == 0 &&
         s.substr(1, 2).find_first_not_of("0123456789") == std::string_view::npos &&
         (s.size() == 3 || s.substr(3, 1).find_first_of(" -") == 0);
}

}  // namespace

bool is_refusal(const detection& d) {
  const std::string_view s = d.summary.view();
  if (d.proto == protocol::unknown && starts_with(s, "text: ")) {
    return reply_code_refuses(s.substr(6));
  }
  switch (d.proto) {
    case protocol::smtp:
    case protocol::ftp:
      return reply_code_refuses(s);
    case protocol::pop3:
      return starts_with(s, "-ERR");
    case protocol::imap:
      return starts_with(s, "* BYE");
    case protocol::postgres:
      return s.find("ErrorResponse") != std::string_view::npos || starts_with(s, "FATAL") ||
             starts_with(s, "ERROR") || starts_with(s, "PANIC");
    case protocol::mysql:
      return starts_with(s, "ERR") || s.find("error") != std::string_view::npos;
    default:
      return false;
  }
}

first_reply classify_first_reply(server_status status, bool alert, bool client_tls,
                                 const detection& d) {
  if (alert) {
    // An alert as the answer (to a ClientHello, or to plaintext a TLS server could not read).
    return first_reply::tls_alert;
  }
  if (status != server_status::not_tls) {
    return first_reply::tls;
  }
  if (client_tls) {
    return first_reply::not_tls;
  }
  return is_refusal(d) ? first_reply::refusal : first_reply::plaintext;
}

}  // namespace linesman::tls
