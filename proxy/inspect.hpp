// inspect: the connection's window onto tls/ - classify each side's first flight as it grows and
// fill the record's client_first/tls and upstream_first/server_tls. The connection calls these
// after every read of the inspection stage with all bytes received so far in that direction.
#pragma once

#include "proxy/access_record.hpp"
#include "tls/client_hello.hpp"

#include <cstdint>
#include <span>

namespace linesman::proxy {

// kHelloLimits: what `run` and `linesman inspect` accept as a ClientHello: 16 KiB of handshake
// message (hello_too_large counts these bytes, not bytes on the wire) in at most 64 records (a
// hello cut into more is hello_too_large too, with the warning hello_many_records; real clients
// use one or two).
inline constexpr tls::hello_limits kHelloLimits{16384, 64};

// kFlightBufferBytes: the bounded first-flight buffer per direction: room for any hello within
// kHelloLimits with all its record headers, after a PostgreSQL SSLRequest (8 bytes); at least one
// full TLS record for the upstream's first flight.
inline constexpr std::size_t kFlightBufferBytes =
    8 + kHelloLimits.max_handshake_len + 5 * static_cast<std::size_t>(kHelloLimits.max_records);
static_assert(kFlightBufferBytes >= 16384 + 5);

// kHelloManyRecords: the warning a record carries when the hello hit kHelloLimits.max_records.
inline constexpr const char* kHelloManyRecords = "hello_many_records";

enum class client_verdict : std::uint8_t {
  need_more,  // could still be a longer first flight
  done,       // a complete ClientHello, or a plaintext first flight we can name
  malformed,  // starts like TLS but is not a valid ClientHello
  too_large,  // a ClientHello beyond the inspection limit
};

struct client_check {
  client_verdict verdict = client_verdict::need_more;
  bool tls = false;             // the flight is (or starts like) a ClientHello
  bool hello_complete = false;  // rec.tls holds a complete hello (SNI usable for routing)
};

// inspect_client_flight: (re)classify the client's bytes `in` (everything so far, `reads` socket
// reads) and update rec.client_first and rec.tls. `final`: no more bytes will be looked at, so
// decide now. Never throws on peer data.
client_check inspect_client_flight(std::span<const std::uint8_t> in, int reads, bool final,
                                   access_record& rec);

enum class reply_verdict : std::uint8_t {
  need_more,    // not enough bytes to judge yet
  good,         // a ServerHello, a greeting, any plaintext answer that is not a refusal
  tls_alert,    // a TLS alert as the answer
  not_tls,      // the client spoke TLS, the answer is not TLS
  error_reply,  // a protocol-level refusal (PostgreSQL ErrorResponse, MySQL ERR, SMTP/FTP 4xx/5xx)
};

// inspect_upstream_flight: (re)classify the upstream's first bytes `in` and update
// rec.upstream_first and rec.server_tls. `client_tls`: the client's first flight was TLS.
reply_verdict inspect_upstream_flight(std::span<const std::uint8_t> in, bool client_tls, bool final,
                                      access_record& rec);

}  // namespace linesman::proxy
