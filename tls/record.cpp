#include "tls/record.hpp"

#include "tls/byte_reader.hpp"

#include <algorithm>

namespace linesman::tls {

std::string_view hello_status_name(hello_status s) {
  switch (s) {
    case hello_status::complete:
      return "complete";
    case hello_status::incomplete:
      return "incomplete";
    case hello_status::malformed:
      return "malformed";
    case hello_status::too_large:
      return "too_large";
    case hello_status::not_tls:
      return "not_tls";
  }
  return "malformed";
}

namespace {

// One TLS record header (RFC 8446 section 5.1):
//
//    0               1               2               3               4
//   +---------------+---------------+---------------+---------------+---------------+
//   | content_type  | legacy_record_version (2)     | length (2), 1..2^14           |
//   +---------------+---------------+---------------+---------------+---------------+
//   | fragment (length bytes) ...
//
// A handshake message inside the concatenated fragments of consecutive handshake records
// (RFC 8446 section 4):
//
//   +---------------+-----------------------------------------------+
//   | msg_type      | length (3)                                    |
//   +---------------+-----------------------------------------------+
//   | body (length bytes), possibly continued in the next records ...
//
// read_record_header: the checked header; `incomplete` when cut, `malformed` when it cannot start
// a handshake record.
hello_status read_record_header(byte_reader& r, std::uint16_t& version, std::uint16_t& len) {
  std::uint8_t type = 0;
  if (!r.read_u8(type)) {
    return hello_status::incomplete;
  }
  if (type != kContentHandshake) {
    // Handshake messages must not be interleaved with other record types (RFC 8446 5.1).
    return hello_status::malformed;
  }
  std::uint8_t major = 0;
  if (!r.peek_u8(major)) {
    return hello_status::incomplete;
  }
  if (major != 3) {
    return hello_status::malformed;
  }
  if (!r.read_u16(version) || !r.read_u16(len)) {
    return hello_status::incomplete;
  }
  // Zero-length handshake fragments are forbidden (RFC 8446 5.1) and would let a peer make us
  // walk records forever without progress; over-long ones are a record_overflow.
  if (len == 0 || len > kMaxRecordPayload) {
    return hello_status::malformed;
  }
  return hello_status::complete;
}

// copy_fragments: second pass over records already validated by the first one; copies the
// message's bytes, in order, into `scratch` (which holds at least message_len bytes).
void copy_fragments(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch,
                    std::size_t message_len) {
  byte_reader r(in);
  std::size_t copied = 0;
  while (copied < message_len) {
    std::uint16_t version = 0;
    std::uint16_t len = 0;
    std::span<const std::uint8_t> fragment;
    if (read_record_header(r, version, len) != hello_status::complete ||
        !r.read_bytes(len, fragment)) {
      return;  // unreachable: the first pass saw these records whole
    }
    const std::size_t take = std::min<std::size_t>(fragment.size(), message_len - copied);
    std::ranges::copy(fragment.first(take), scratch.subspan(copied, take).begin());
    copied += take;
  }
}

}  // namespace

hello_status read_handshake_message(std::span<const std::uint8_t> in,
                                    std::span<std::uint8_t> scratch, std::uint8_t expected_type,
                                    std::size_t max_message_len, handshake_message& out) {
  out = handshake_message{};
  byte_reader r(in);
  std::size_t header_seen = 0;  // handshake header bytes seen so far (0..4)
  std::uint32_t body_len = 0;
  std::size_t message_len = 0;    // known once header_seen == 4
  std::size_t fragments_len = 0;  // bytes of complete record fragments so far
  for (;;) {
    std::uint16_t version = 0;
    std::uint16_t len = 0;
    const hello_status header = read_record_header(r, version, len);
    if (header != hello_status::complete) {
      return header;
    }
    if (out.records == 0) {
      out.record_version = version;
    }
    ++out.records;
    // The fragment may still be cut: read what there is, to learn the message header early.
    const bool cut = r.remaining() < len;
    byte_reader fragment;
    if (!r.read_sub(std::min<std::size_t>(len, r.remaining()), fragment)) {
      return hello_status::incomplete;
    }
    while (header_seen < kHandshakeHeaderLen) {
      std::uint8_t b = 0;
      if (!fragment.read_u8(b)) {
        break;
      }
      if (header_seen == 0) {
        if (b != expected_type) {
          return hello_status::malformed;
        }
        out.msg_type = b;
      } else {
        body_len = (body_len << 8U) | b;
      }
      ++header_seen;
      if (header_seen == kHandshakeHeaderLen) {
        message_len = body_len + kHandshakeHeaderLen;
        if (message_len > max_message_len) {
          return hello_status::too_large;
        }
      }
    }
    if (cut) {
      return hello_status::incomplete;
    }
    fragments_len += len;
    if (header_seen == kHandshakeHeaderLen && fragments_len >= message_len) {
      break;
    }
    // The message continues in the next record, so it will need the scratch buffer: say so now
    // rather than after the peer has sent everything.
    if (header_seen == kHandshakeHeaderLen && scratch.size() < message_len) {
      return hello_status::too_large;
    }
  }
  out.message_len = message_len;
  out.wire_len = in.size() - r.remaining();
  if (out.records == 1) {
    byte_reader whole(in);
    if (!whole.skip(kRecordHeaderLen + kHandshakeHeaderLen) ||
        !whole.read_bytes(message_len - kHandshakeHeaderLen, out.body)) {
      return hello_status::malformed;  // unreachable: the loop saw the record whole
    }
    return hello_status::complete;
  }
  if (scratch.size() < message_len) {
    return hello_status::too_large;
  }
  copy_fragments(in, scratch, message_len);
  out.body = std::span<const std::uint8_t>(scratch).subspan(kHandshakeHeaderLen,
                                                            message_len - kHandshakeHeaderLen);
  return hello_status::complete;
}

}  // namespace linesman::tls
