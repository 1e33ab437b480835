// observe_server: turn what tls/ read of a server's first flight (tls/server_hello.hpp) and of
// either side's first bytes (tls/detect.hpp) into the access log's `server_tls` and
// `first_flight` objects (proxy/observation.hpp).
#pragma once

#include "proxy/observation.hpp"
#include "tls/detect.hpp"
#include "tls/server_hello.hpp"

#include <cstddef>

namespace linesman::proxy {

// observe_server_flight: the `server_tls` observation of `flight`, as returned with `status` by
// tls::parse_server_flight. Filled as far as the flight was read, whatever the status: the
// `version` (negotiated: supported_versions, else legacy) and `cipher` codes once a ServerHello
// was read; `alert` (its codes) when a plaintext alert was; `certificate` (subject, issuer, DNS/IP
// SANs, via OpenSSL) when a TLS <= 1.2 leaf certificate was read and is a well-formed X.509
// certificate. Copies everything: the result does not borrow `flight`.
server_tls_obs observe_server_flight(const tls::server_flight& flight, tls::server_status status);

// observe_first_flight: the `first_flight` observation of a detection over `bytes` bytes.
// `protocol` is "none" when no bytes came, whatever `d` says.
first_flight_obs observe_first_flight(const tls::detection& d, std::size_t bytes);

}  // namespace linesman::proxy
