// record: the TLS record layer as seen by a peeker, and reassembly of one handshake message that
// may span several records and arrive over several socket reads (RFC 8446 section 5.1).
//
// Browser ClientHellos with post-quantum key shares are about 2 KB: they span TCP segments, and a
// client may also split one handshake message over several records. A proxy peeking at the first
// flight calls read_handshake_message on everything it has buffered so far, after every read; the
// answer is `incomplete` until the whole message is there, then final.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace linesman::tls {

inline constexpr std::size_t kRecordHeaderLen = 5;
inline constexpr std::size_t kHandshakeHeaderLen = 4;
// kMaxRecordPayload: TLSPlaintext.length must not exceed 2^14 (RFC 8446 section 5.1).
inline constexpr std::size_t kMaxRecordPayload = 16384;

// Record content types (RFC 8446 section 5.1, RFC 6520 for heartbeat).
inline constexpr std::uint8_t kContentChangeCipherSpec = 20;
inline constexpr std::uint8_t kContentAlert = 21;
inline constexpr std::uint8_t kContentHandshake = 22;
inline constexpr std::uint8_t kContentApplicationData = 23;
inline constexpr std::uint8_t kContentHeartbeat = 24;

inline constexpr std::uint8_t kHandshakeClientHello = 1;
inline constexpr std::uint8_t kHandshakeServerHello = 2;

// Both hellos carry a 32-byte random and a legacy_session_id of at most 32 bytes (RFC 8446 4.1.2).
inline constexpr std::size_t kRandomLen = 32;
inline constexpr std::size_t kMaxSessionIdLen = 32;

// hello_status: the outcome of parsing a first flight that may still be growing.
//   complete    the whole message is there and parsed; the result is final.
//   incomplete  every byte so far is consistent with a valid message; call again with more bytes.
//   malformed   the bytes break the framing or the message grammar; more bytes cannot fix it.
//   too_large   the message announces more than the limit (or the caller's scratch buffer).
//   not_tls     the first bytes are not a TLS (or SSLv2-format) handshake at all.
// Every status but `incomplete` is final: appending bytes never changes it.
enum class hello_status : std::uint8_t { complete, incomplete, malformed, too_large, not_tls };

// hello_status_name: "complete", "incomplete", "malformed", "too_large" or "not_tls".
std::string_view hello_status_name(hello_status s);

// handshake_message: one reassembled handshake message.
struct handshake_message {
  std::uint8_t msg_type = 0;
  // body: the message without its 4-byte header. Borrowed: it points into the caller's `in` when
  // the message sits in one record, into the caller's `scratch` when it spans records. Valid as
  // long as the buffer it points into is unchanged.
  std::span<const std::uint8_t> body;
  std::size_t message_len = 0;       // body plus the 4-byte handshake header
  std::size_t wire_len = 0;          // bytes of `in` up to the end of the message's last record
  int records = 0;                   // records holding part of the message (so far, if incomplete)
  std::uint16_t record_version = 0;  // the first record's legacy_record_version
};

// read_handshake_message: reassemble the first handshake message from `in`, which must start at
// a record header. Each record must be a handshake record (type 22) with major version 3, a
// length of 1..2^14, and the message type must be `expected_type`; anything else is
// `malformed`. A message longer than `max_message_len` (header included) is `too_large` as soon
// as its header is seen. When the message spans records its bytes are copied into `scratch`
// (which must then hold message_len bytes, else `too_large`); otherwise nothing is copied.
// Allocation-free. `out` is meaningful on `complete`; on `incomplete` only `records` and
// `record_version` are (what was seen so far).
hello_status read_handshake_message(std::span<const std::uint8_t> in,
                                    std::span<std::uint8_t> scratch, std::uint8_t expected_type,
                                    std::size_t max_message_len, handshake_message& out);

}  // namespace linesman::tls
