// verdict: the shared decisions about a first reply, used by the proxy's access log
// (proxy/inspect.cpp) and by `linesman replay` (capture/replay.cpp) so the two cannot drift.
// Pure: reads only tls::detect's protocol and printable summary and the parsers' results, never
// raw bytes; no allocation.
#pragma once

#include "tls/detect.hpp"
#include "tls/server_hello.hpp"

#include <cstdint>

namespace linesman::tls {

// is_refusal: the upstream's first line refuses the client at the protocol level (SMTP/FTP or
// plain-text 4xx/5xx reply codes, POP3 -ERR, IMAP * BYE, PostgreSQL ErrorResponse/FATAL, MySQL
// ERR). False for anything else, including an empty summary.
bool is_refusal(const detection& d);

// client_sent_tls: whether a non-TLS reply counts as upstream_not_tls. Only a whole ClientHello
// (or one too large to inspect) counts: bytes that merely start like TLS (a lone 0x16) may be
// echoed back by a plaintext server legitimately.
constexpr bool client_sent_tls(bool hello_complete, bool hello_too_large) {
  return hello_complete || hello_too_large;
}

// first_reply: what a (non-empty) first reply from the upstream is, for the stop reason.
enum class first_reply : std::uint8_t {
  tls,        // TLS handshake records (complete, malformed or too large: the server speaks TLS)
  tls_alert,  // a TLS alert as the answer (upstream_tls_alert)
  not_tls,    // the client sent TLS, the answer is not TLS (upstream_not_tls)
  refusal,    // a protocol-level refusal (upstream_error_reply)
  plaintext,  // any other plaintext answer (a greeting, a response)
};

// classify_first_reply: `status` and `alert` from parse_server_flight over the reply (`alert`:
// the flight holds an alert), `client_tls` from client_sent_tls, `d` from detect_first_flight
// over the reply in direction server_to_client. An incomplete TLS prefix counts as tls; callers
// that wait for more bytes decide that before asking.
first_reply classify_first_reply(server_status status, bool alert, bool client_tls,
                                 const detection& d);

}  // namespace linesman::tls
