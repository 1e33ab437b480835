#include "tls/server_hello.hpp"

#include "tls/byte_reader.hpp"
#include "tls/record.hpp"

#include <algorithm>
#include <array>

namespace linesman::tls {

namespace {

// Record content types and the handshake header length: tls/record.hpp (kContent*,
// kHandshakeHeaderLen, kHandshakeServerHello).

// Handshake message types (RFC 8446 section 4, RFC 5246 section 7.4).
constexpr std::uint8_t kHelloRequest = 0;
constexpr std::uint8_t kNewSessionTicket = 4;
constexpr std::uint8_t kCertificate = 11;
constexpr std::uint8_t kServerKeyExchange = 12;
constexpr std::uint8_t kCertificateRequest = 13;
constexpr std::uint8_t kServerHelloDone = 14;

// Extensions read from a ServerHello.
constexpr std::uint16_t kExtKeyShare = 51;
constexpr std::uint16_t kExtSupportedVersions = 43;

// A TLSCiphertext may carry 2^14 + 2048 bytes (RFC 5246 6.2.3); anything longer is not TLS.
constexpr std::size_t kMaxRecordLen = 16384 + 2048;

// SHA-256("HelloRetryRequest"), the random of a HelloRetryRequest (RFC 8446 section 4.1.3).
constexpr std::array<std::uint8_t, kRandomLen> kHelloRetryRandom = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};
// "DOWNGRD": the first 7 of the last 8 random bytes of a downgraded TLS 1.3 server.
constexpr std::array<std::uint8_t, 7> kDowngradePrefix = {0x44, 0x4f, 0x57, 0x4e, 0x47, 0x52, 0x44};

enum class step : std::uint8_t { more, done, malformed, too_large };

// random_is: whether the 32-byte random `random` equals `want`.
bool random_is(std::span<const std::uint8_t> random, std::span<const std::uint8_t> want) {
  byte_reader r(random);
  return random.size() == want.size() && r.starts_with(want);
}

bool has_downgrade_sentinel(std::span<const std::uint8_t> random) {
  byte_reader r(random);
  std::uint8_t last = 0;
  if (!r.skip(kRandomLen - 8) || !r.starts_with(kDowngradePrefix) ||
      !r.skip(kDowngradePrefix.size()) || !r.read_u8(last)) {
    return false;
  }
  return last == 0 || last == 1;
}

// parse_server_hello: the body of a ServerHello handshake message (after its 4-byte header).
//
//   0      2                     34   35         35+n 37+n   38+n   40+n
//   +------+---------------------+----+-----------+------+------+------+--------------------+
//   | ver  | random (32)         | n  | session_id| suite| comp | elen | extensions (elen)  |
//   +------+---------------------+----+-----------+------+------+------+--------------------+
//   each extension: | type u16 | len u16 | data (len) |
//   The extensions block is optional before TLS 1.2 (RFC 5246 7.4.1.3); nothing may follow it.
//   supported_versions data: | selected_version u16 |
//   key_share data: | group u16 | key_exchange<u16> | (in a HelloRetryRequest: | group u16 |)
bool parse_server_hello(std::span<const std::uint8_t> body, server_flight& out) {
  byte_reader r(body);
  std::span<const std::uint8_t> random;
  byte_reader session_id;
  std::uint8_t compression = 0;
  if (!r.read_u16(out.legacy_version) || !r.read_bytes(kRandomLen, random) ||
      !r.read_u8_prefixed(session_id) || session_id.remaining() > kMaxSessionIdLen ||
      !r.read_u16(out.cipher_suite) || !r.read_u8(compression)) {
    return false;
  }
  out.hello_retry_request = random_is(random, kHelloRetryRandom);
  out.downgrade_sentinel = !out.hello_retry_request && has_downgrade_sentinel(random);
  if (r.empty()) {
    return true;  // no extensions: legal for TLS 1.0-1.2
  }
  byte_reader exts;
  if (!r.read_u16_prefixed(exts) || !r.empty()) {
    return false;
  }
  bool seen_versions = false;
  bool seen_key_share = false;
  while (!exts.empty()) {
    std::uint16_t type = 0;
    byte_reader data;
    if (!exts.read_u16(type) || !exts.read_u16_prefixed(data)) {
      return false;
    }
    ++out.extension_count;
    if (type == kExtSupportedVersions) {
      // One selected version, exactly two bytes (RFC 8446 4.2.1); a repeat is a protocol error.
      if (seen_versions || !data.read_u16(out.selected_version) || !data.empty()) {
        return false;
      }
      seen_versions = true;
    } else if (type == kExtKeyShare) {
      if (seen_key_share || !data.read_u16(out.key_share_group)) {
        return false;
      }
      seen_key_share = true;
    }
  }
  return true;
}

// parse_certificate: a TLS 1.2-and-older Certificate message body; the first entry is the leaf.
//
//   | certificate_list len u24 | cert_1 len u24 | cert_1 DER | cert_2 len u24 | ... |
bool parse_certificate(std::span<const std::uint8_t> body, server_flight& out) {
  byte_reader r(body);
  byte_reader list;
  if (!r.read_u24_prefixed(list) || !r.empty()) {
    return false;
  }
  out.certificate_message_seen = true;
  if (list.empty()) {
    return true;  // the server has no certificate to send (anonymous suites, RFC 5246 7.4.2)
  }
  byte_reader leaf;
  if (!list.read_u24_prefixed(leaf) || leaf.empty()) {
    return false;
  }
  out.leaf_certificate = leaf.rest();
  return true;
}

// flight_parser: walks the handshake messages of consecutive handshake records. A message that
// lies within one record is read in place; one that spans records is gathered in `scratch_`,
// which holds at most one message at a time.
class flight_parser {
 public:
  flight_parser(std::span<std::uint8_t> scratch, server_flight& out)
      : scratch_(scratch), out_(out) {}

  // on_fragment: the payload of one handshake record.
  step on_fragment(std::span<const std::uint8_t> fragment) {
    byte_reader r(fragment);
    while (!r.empty()) {
      std::span<const std::uint8_t> message;
      if (pending_ == 0 && whole_message(r, message)) {
        const step s = on_message(message);
        if (s != step::more) {
          return s;
        }
        continue;
      }
      const step s = gather(r);
      if (s != step::more || pending_ != 0) {
        return s;  // done/malformed/too_large, or the fragment ran out mid-message
      }
    }
    return step::more;
  }

  // mid_message: whether a handshake message is cut at the end of the records seen so far.
  [[nodiscard]] bool mid_message() const { return pending_ != 0; }

 private:
  // whole_message: the next whole message (header included) if `r` holds all of it.
  static bool whole_message(byte_reader& r, std::span<const std::uint8_t>& message) {
    byte_reader peek = r;
    std::uint8_t type = 0;
    std::uint32_t len = 0;
    if (!peek.read_u8(type) || !peek.read_u24(len) || peek.remaining() < len) {
      return false;
    }
    return r.read_bytes(kHandshakeHeaderLen + len, message);
  }

  // gather: copy the next bytes of a message that spans records into scratch; when the message
  // is whole, hand it to on_message and empty the scratch.
  step gather(byte_reader& r) {
    if (pending_ < kHandshakeHeaderLen && !append(r, kHandshakeHeaderLen - pending_)) {
      return step::too_large;
    }
    if (pending_ < kHandshakeHeaderLen) {
      return step::more;
    }
    byte_reader header(std::span<const std::uint8_t>(scratch_.first(pending_)));
    std::uint8_t type = 0;
    std::uint32_t len = 0;
    if (!header.read_u8(type) || !header.read_u24(len)) {
      return step::malformed;  // unreachable: pending_ >= 4 was checked
    }
    const std::size_t total = kHandshakeHeaderLen + len;
    if (total > scratch_.size()) {
      return too_large(type);
    }
    if (!append(r, total - pending_)) {
      return step::too_large;
    }
    if (pending_ < total) {
      return step::more;
    }
    pending_ = 0;
    // The scratch is reused only after on_message returns `more`, and no span into it is kept
    // then (only a finished Certificate keeps one, and that ends the walk).
    return on_message(std::span<const std::uint8_t>(scratch_.first(total)));
  }

  // append: move up to `want` bytes from `r` into scratch; false when scratch is full.
  bool append(byte_reader& r, std::size_t want) {
    const std::size_t take = std::min(want, r.remaining());
    std::span<const std::uint8_t> bytes;
    if (take > scratch_.size() - pending_ || !r.read_bytes(take, bytes)) {
      return false;
    }
    std::ranges::copy(bytes, scratch_.subspan(pending_).begin());
    pending_ += take;
    return true;
  }

  // too_large: a message that cannot be gathered. The ServerHello is essential; a Certificate
  // after it is not: the flight is still answered, without the leaf.
  step too_large(std::uint8_t type) {
    if (out_.has_server_hello && type == kCertificate) {
      out_.certificate_message_seen = true;
      out_.certificate_too_large = true;
      return step::done;
    }
    return out_.has_server_hello ? step::malformed : step::too_large;
  }

  step on_message(std::span<const std::uint8_t> message) {
    byte_reader r(message);
    std::uint8_t type = 0;
    std::uint32_t len = 0;
    if (!r.read_u8(type) || !r.read_u24(len)) {
      return step::malformed;
    }
    const std::span<const std::uint8_t> body = r.rest();
    if (!out_.has_server_hello) {
      if (type != kHandshakeServerHello || !parse_server_hello(body, out_)) {
        return step::malformed;
      }
      out_.has_server_hello = true;
      // After a HelloRetryRequest the server waits; after a TLS 1.3 ServerHello all is encrypted.
      // (A supported_versions of 1.2 or lower is not allowed, RFC 8446 4.2.1; read it as 1.2.)
      const bool done = out_.hello_retry_request || out_.selected_version >= 0x0304;
      return done ? step::done : step::more;
    }
    switch (type) {
      case kCertificate:
        return parse_certificate(body, out_) ? step::done : step::malformed;
      case kServerKeyExchange:
      case kCertificateRequest:
      case kServerHelloDone:
      case kNewSessionTicket:
        return step::done;  // no certificate in this flight (anonymous/PSK suite or resumption)
      case kHelloRequest:
        return body.empty() ? step::more : step::malformed;  // may be sent at any time; ignored
      default:
        return step::malformed;
    }
  }

  std::span<std::uint8_t> scratch_;
  server_flight& out_;
  std::size_t pending_ = 0;
};

server_status to_status(step s) {
  switch (s) {
    case step::done:
      return server_status::complete;
    case step::malformed:
      return server_status::malformed;
    case step::too_large:
      return server_status::too_large;
    case step::more:
      return server_status::incomplete;
  }
  return server_status::malformed;
}

// first_record_is_tls: whether the first bytes can begin a server's TLS flight (a handshake or
// alert record with a 3.x version). Decides `not_tls` from as few as one byte.
server_status first_record_is_tls(std::span<const std::uint8_t> in) {
  byte_reader r(in);
  std::uint8_t type = 0;
  std::uint8_t major = 0;
  if (!r.read_u8(type)) {
    return server_status::incomplete;
  }
  if (type != kContentHandshake && type != kContentAlert) {
    return server_status::not_tls;
  }
  if (!r.read_u8(major)) {
    return server_status::incomplete;
  }
  return major == 3 ? server_status::complete : server_status::not_tls;
}

}  // namespace

// parse_server_flight walks TLS records (RFC 8446 section 5.1):
//
//   0      1        3        5
//   +------+--------+--------+---------------------------+
//   | type | version| length | fragment (length bytes)   |   type: 20 CCS, 21 alert,
//   +------+--------+--------+---------------------------+         22 handshake, 23 app data
//   alert fragment: | level u8 | description u8 |
server_status parse_server_flight(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch,
                                  server_flight& out) {
  out = server_flight{};
  if (const server_status first = first_record_is_tls(in); first != server_status::complete) {
    return first;
  }
  flight_parser hs(scratch, out);
  byte_reader r(in);
  // Each pass consumes at least one whole record header, so the loop is bounded by in.size() / 5.
  while (true) {
    std::uint8_t type = 0;
    std::uint16_t version = 0;
    std::uint16_t len = 0;
    byte_reader fragment;
    if (!r.read_u8(type) || !r.read_u16(version) || !r.read_u16(len)) {
      return server_status::incomplete;
    }
    if ((version >> 8U) != 3 || len > kMaxRecordLen) {
      return server_status::malformed;
    }
    if (out.records == 0) {
      out.record_version = version;
    }
    if (!r.read_sub(len, fragment)) {
      return server_status::incomplete;
    }
    ++out.records;
    out.flight_bytes = in.size() - r.remaining();
    step s = step::more;
    switch (type) {
      case kContentAlert: {
        // A plaintext alert ends the flight; one cut inside a handshake message breaks framing.
        server_alert alert;
        if (hs.mid_message() || !fragment.read_u8(alert.level) ||
            !fragment.read_u8(alert.description)) {
          return server_status::malformed;
        }
        out.alert = alert;
        return server_status::complete;
      }
      case kContentHandshake:
        if (len == 0) {
          return server_status::malformed;  // zero-length handshake fragments are forbidden
        }
        s = hs.on_fragment(fragment.rest());
        break;
      case kContentChangeCipherSpec:
        // Before the ServerHello, or inside a handshake message, it is out of order. After a
        // TLS <= 1.2 ServerHello it starts an abbreviated (resumed) handshake: nothing more clear.
        if (!out.has_server_hello || hs.mid_message()) {
          return server_status::malformed;
        }
        return server_status::complete;
      case kContentApplicationData:
      default:
        return server_status::malformed;
    }
    if (s != step::more) {
      return to_status(s);
    }
  }
}

const char* server_status_name(server_status s) {
  switch (s) {
    case server_status::complete:
      return "complete";
    case server_status::incomplete:
      return "incomplete";
    case server_status::malformed:
      return "malformed";
    case server_status::not_tls:
      return "not_tls";
    case server_status::too_large:
      return "too_large";
  }
  return "unknown";
}

}  // namespace linesman::tls
