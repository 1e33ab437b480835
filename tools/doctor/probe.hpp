// doctor/probe: `linesman doctor --probe`, active checks of the service addresses written in the
// configuration (and only those): can they be reached, do they speak TLS, and does that match
// what the router in front of them sends. Every step has a bounded timeout; nothing is retried.
#pragma once

#include "tools/doctor/checks.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace linesman::tools::doctor {

enum class tls_answer {
  server_hello,  // a TLS handshake record came back
  alert,         // a TLS alert came back (the peer speaks TLS but refused us)
  plaintext,     // bytes that are not TLS
  closed,        // FIN without a byte
  reset,         // RST
  silent,        // nothing within the timeout
};
std::string_view tls_answer_name(tls_answer a);

// probe_result: what one address did. Reply texts are printable summaries, never raw bytes.
struct probe_result {
  bool resolved = false;
  bool reachable = false;
  std::string connect_error;  // strerror text or "timed out"
  tls_answer tls = tls_answer::silent;
  std::string tls_detail;      // alert name or plaintext summary
  bool postgres = false;       // answered an SSLRequest with 'S' or 'N'
  char postgres_ssl = 0;       // 'S' or 'N'
  std::string postgres_error;  // ErrorResponse to a plaintext StartupMessage: "FATAL 28000: ..."
  bool postgres_accepts_plaintext = false;
};

struct probe_options {
  std::chrono::milliseconds timeout{2000};
  std::chrono::milliseconds banner_wait{300};
};

// probe_address: connect to host:port (resolved with getaddrinfo), send a ClientHello with `sni`
// (none when empty or an IP), and when the answer is not TLS try PostgreSQL's SSLRequest and a
// plaintext StartupMessage. Never throws.
probe_result probe_address(const std::string& host, std::uint16_t port, const std::string& sni,
                           const probe_options& opts);

// run_probes: probe every server address of every TCP service and compare with its routers.
std::vector<finding> run_probes(const traefik_config& cfg, const probe_options& opts);

}  // namespace linesman::tools::doctor
