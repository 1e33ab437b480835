#include "proxy/observe_server.hpp"

#include "tls/x509.hpp"

#include <string>

namespace linesman::proxy {

server_tls_obs observe_server_flight(const tls::server_flight& flight, tls::server_status status) {
  // The status adds nothing the flight does not say: an incomplete TLS 1.2 flight still has its
  // ServerHello, a malformed one whatever came before the fault. It is taken so that a caller
  // cannot forget that the certificate may be missing only because the flight is not over.
  (void)status;
  server_tls_obs out;
  if (flight.has_server_hello) {
    out.version = flight.version();
    out.cipher = flight.cipher_suite;
  }
  if (flight.alert) {
    out.alert = alert_obs{flight.alert->level, flight.alert->description};
  }
  if (!flight.leaf_certificate.empty()) {
    tls::certificate_names names;
    if (tls::describe_certificate(flight.leaf_certificate, names)) {
      certificate_obs c;
      c.subject = std::move(names.subject);
      c.issuer = std::move(names.issuer);
      c.san = std::move(names.san);
      out.certificate = std::move(c);
    }
  }
  return out;
}

first_flight_obs observe_first_flight(const tls::detection& d, std::size_t bytes) {
  first_flight_obs out;
  out.protocol = std::string(tls::protocol_name(bytes == 0 ? tls::protocol::none : d.proto));
  out.summary = std::string(d.summary.view());
  out.bytes = bytes;
  return out;
}

}  // namespace linesman::proxy
