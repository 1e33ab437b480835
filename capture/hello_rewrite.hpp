// hello_rewrite: change the server_name of a captured ClientHello so a replay can try another
// name against the same target (`linesman replay --sni NAME`).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::capture {

// rewrite_sni: `flight` (a client first flight: a TLS ClientHello, possibly after a PostgreSQL
// SSLRequest, possibly followed by more bytes) with the ClientHello's SNI set to `name`, into
// `out`. Every length is fixed up: record(s), handshake message, extensions block, server_name
// list and host name. The server_name extension keeps its place; a hello without one gets it
// inserted first (pre_shared_key must stay last); an empty `name` removes the extension. A
// padding extension (RFC 7685) is shrunk or grown to keep the hello's size when it can. The
// handshake message is re-emitted in records of at most 2^14 bytes with the original record
// version; bytes before and after the hello are copied unchanged.
// Returns false with `error` (out untouched) when `flight` holds no complete, well-formed TLS
// ClientHello or the name does not fit (1..255 bytes for a name, 2^14 for the hello).
// Note: a TLS 1.3 PSK binder or an ECH payload covers the old hello; servers will reject the
// binder (and fall back to a full handshake or fail), which is the nature of such a rewrite.
bool rewrite_sni(std::span<const std::uint8_t> flight, std::string_view name,
                 std::vector<std::uint8_t>& out, std::string& error);

}  // namespace linesman::capture
