// server_hello: what a TLS server's first flight says in clear - the ServerHello (or a
// HelloRetryRequest), an Alert, and for TLS 1.2 and older the leaf certificate.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace linesman::tls {

// server_status: the outcome of parse_server_flight.
enum class server_status : std::uint8_t {
  complete,    // enough was seen to answer (see server_flight for what)
  incomplete,  // a proper prefix of a possible flight: more bytes could complete it
  malformed,   // TLS records, but they break the framing or the handshake rules
  not_tls,     // the first bytes are not a TLS handshake or alert record
  too_large,   // the ServerHello spans records and does not fit in the caller's scratch
};

// server_alert: a plaintext Alert (RFC 8446 section 6); names in tls/names.hpp.
struct server_alert {
  std::uint8_t level = 0;
  std::uint8_t description = 0;
};

// server_flight: the readable part of a server's first flight. Spans borrow either the `in` or
// the `scratch` buffer given to parse_server_flight; they are valid while both are.
struct server_flight {
  std::uint16_t record_version = 0;  // the first record's header version

  bool has_server_hello = false;
  bool hello_retry_request = false;    // a ServerHello with the RFC 8446 4.1.3 special random
  std::uint16_t legacy_version = 0;    // ServerHello.legacy_version
  std::uint16_t selected_version = 0;  // supported_versions extension; 0 when absent
  std::uint16_t cipher_suite = 0;
  std::uint16_t key_share_group = 0;  // key_share extension's group; 0 when absent
  bool downgrade_sentinel = false;    // random ends in "DOWNGRD\x01"/"DOWNGRD\x00" (4.1.3)
  std::uint16_t extension_count = 0;

  // alert: the first plaintext alert, either as the first record or after the ServerHello.
  std::optional<server_alert> alert;

  // leaf_certificate: DER of the first certificate of a TLS <= 1.2 Certificate message. Empty
  // when the server sent none, or the flight is TLS 1.3 (certificates are encrypted there).
  std::span<const std::uint8_t> leaf_certificate;
  bool certificate_message_seen = false;  // a Certificate message was read (maybe empty)
  bool certificate_too_large = false;     // a Certificate message did not fit in scratch

  std::size_t records = 0;       // TLS records read up to the answer
  std::size_t flight_bytes = 0;  // bytes of `in` up to the end of the record that answered

  // version: the negotiated version - supported_versions when present, else legacy_version.
  [[nodiscard]] std::uint16_t version() const {
    return selected_version != 0 ? selected_version : legacy_version;
  }
};

// kServerScratchBytes: scratch large enough for any ServerHello and a 64 KiB certificate chain.
inline constexpr std::size_t kServerScratchBytes = 65536 + 4;

// parse_server_flight: read the server's first flight from `in` (all bytes received so far, from
// the first). `scratch` reassembles a handshake message that spans records; a message that fits
// in one record is read in place. Pure and stateless: call again with the longer input.
//
// The answer is `complete` at the first of:
//   - an Alert record (as the first record, or after the ServerHello);
//   - a HelloRetryRequest, or a ServerHello that selects TLS 1.3 (all else is encrypted);
//   - for TLS 1.2 and older, the handshake message after the ServerHello: Certificate (leaf
//     read), or ServerKeyExchange/CertificateRequest/ServerHelloDone/NewSessionTicket (no
//     certificate), or a ChangeCipherSpec (an abbreviated, resumed handshake).
// A Certificate message larger than `scratch` still completes, with certificate_too_large set.
// Every proper prefix of such a flight is `incomplete`, and `out` then holds what was read so far
// (for instance the ServerHello of a TLS 1.2 flight whose Certificate is still on its way).
// Never reads outside `in`, never writes outside `scratch`.
server_status parse_server_flight(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch,
                                  server_flight& out);

// server_status_name: "complete", "incomplete", ... for logs and tests.
const char* server_status_name(server_status s);

}  // namespace linesman::tls
