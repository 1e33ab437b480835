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

// split_records: `flight` with its ClientHello's handshake message re-framed into `records` TLS
// records (original record version), the first carrying `first` bytes of the handshake message
// (0: all records as even as can be, the rest spread evenly after `first`). Bytes before the hello
// (a PostgreSQL SSLRequest) and after it are copied unchanged. The bytes on the wire change; the
// handshake does not. Returns false with `error` (out untouched) when `flight` holds no complete
// TLS ClientHello, when `records` is more than the message has bytes, `first` leaves nothing for
// the other records, or a record would exceed 2^14 bytes.
bool split_records(std::span<const std::uint8_t> flight, unsigned records, std::size_t first,
                   std::vector<std::uint8_t>& out, std::string& error);

// segment_sizes: `len` bytes cut into `n` (>= 1) writes as even as can be (the first ones one
// byte longer); fewer than `n` when `len` < `n` (no empty write). Empty for `len` 0.
std::vector<std::size_t> segment_sizes(std::size_t len, unsigned n);

}  // namespace linesman::capture
