// observe_client: turn a parsed ClientHello (tls/client_hello.hpp) into the access log's `tls`
// object (proxy/observation.hpp), fingerprints included.
#pragma once

#include "proxy/observation.hpp"
#include "tls/client_hello.hpp"

#include <cstdint>
#include <span>
#include <string>

namespace linesman::proxy {

// escape_bytes: printable ASCII (0x20..0x7e) as is, backslash as "\\", anything else as "\xNN".
// Used for SNI and ALPN, which a peer controls: the log never carries their raw bytes.
std::string escape_bytes(std::span<const std::uint8_t> bytes);

// observe_client_hello: the `tls` observation of `hello`, as returned with `status` by
// tls::parse_client_hello. On `complete` every field is filled (SNI and ALPN escaped, version codes
// with GREASE removed, cipher_count counting GREASE like the wire does, JA3 and
// JA4); otherwise only `complete` (false) and `hello_records` (records seen so far) are.
// `hello_reads` is the number of socket reads it took (0 when read from a file). Copies
// everything it needs: the result does not borrow `hello`.
tls_obs observe_client_hello(const tls::client_hello& hello, tls::hello_status status,
                             int hello_reads = 0);

}  // namespace linesman::proxy
