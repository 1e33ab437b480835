// x509: the names in a DER certificate (subject, issuer, subjectAltNames), read with OpenSSL.
//
// Not on the parse path: it runs once per connection, after parse_server_flight found a leaf
// certificate, and it allocates.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace linesman::tls {

// certificate_names: a certificate's names as printable text.
struct certificate_names {
  std::string subject;  // RFC 2253 form, most specific RDN first: "CN=example.test,O=Example"
  std::string issuer;   // same form
  std::vector<std::string> san;  // DNS names as written, IP addresses as text ("127.0.0.1", "::1")
};

// describe_certificate: fill `out` from the DER certificate `der`. Returns false, leaving `out`
// cleared, when `der` is not exactly one well-formed X.509 certificate. Non-printable bytes in a
// name are escaped (RFC 2253 \XX escapes, \xNN in SANs), never copied raw.
bool describe_certificate(std::span<const std::uint8_t> der, certificate_names& out);

}  // namespace linesman::tls
