#include "tls/client_hello.hpp"

#include "tls/names.hpp"

#include <algorithm>
#include <array>
#include <bitset>
#include <optional>

namespace linesman::tls {

namespace detail {

bool next_u16(byte_reader& r, std::uint16_t& out) { return r.read_u16(out); }
bool next_u24(byte_reader& r, std::uint32_t& out) { return r.read_u24(out); }

bool next_u8_opaque(byte_reader& r, std::span<const std::uint8_t>& out) {
  byte_reader body;
  if (!r.read_u8_prefixed(body)) {
    return false;
  }
  out = body.rest();
  return true;
}

bool next_extension(byte_reader& r, extension& out) {
  byte_reader copy = r;
  byte_reader body;
  if (!copy.read_u16(out.type) || !copy.read_u16_prefixed(body)) {
    return false;
  }
  out.body = body.rest();
  r = copy;
  return true;
}

bool next_server_name(byte_reader& r, server_name& out) {
  byte_reader copy = r;
  byte_reader name;
  if (!copy.read_u8(out.name_type) || !copy.read_u16_prefixed(name)) {
    return false;
  }
  out.name = name.rest();
  r = copy;
  return true;
}

bool next_key_share(byte_reader& r, key_share_entry& out) {
  byte_reader copy = r;
  byte_reader key;
  if (!copy.read_u16(out.group) || !copy.read_u16_prefixed(key)) {
    return false;
  }
  out.key = key.rest();
  r = copy;
  return true;
}

}  // namespace detail

namespace {

// PostgreSQL SSLRequest: Int32 length (8), Int32 request code 80877103 (0x04d2162f).
constexpr std::array<std::uint8_t, kPostgresSslRequestLen> kSslRequest = {0x00, 0x00, 0x00, 0x08,
                                                                          0x04, 0xd2, 0x16, 0x2f};

bool any_grease(const u16_list& list) {
  for (std::uint16_t v : list) {
    if (is_grease(v)) {
      return true;
    }
  }
  return false;
}

// read_u16_vector: a non-empty vector of 16-bit values with a `prefix_width`-byte length that
// fills `body` exactly (supported_versions, supported_groups, signature_algorithms).
bool read_u16_vector(std::span<const std::uint8_t> body, std::size_t prefix_width, u16_list& out) {
  byte_reader r(body);
  byte_reader list;
  const bool ok = prefix_width == 1 ? r.read_u8_prefixed(list) : r.read_u16_prefixed(list);
  if (!ok || !r.empty() || list.empty() || list.remaining() % 2 != 0) {
    return false;
  }
  out = u16_list(list.rest());
  return true;
}

// server_name extension body (RFC 6066 section 3):
//
//   +-------------------------------+
//   | server_name_list length (2)   |
//   +---------------+---------------+---------------+----------------------+
//   | name_type (1) | HostName length (2)           | HostName ...         |  repeated
//   +---------------+---------------+---------------+----------------------+
//
// Strict like BoringSSL: the list fills the body, is not empty, holds at most one host_name, and
// the host name is neither empty nor contains a NUL (which would truncate it in C strings).
bool parse_server_name(std::span<const std::uint8_t> body, client_hello& out) {
  byte_reader r(body);
  byte_reader list;
  if (!r.read_u16_prefixed(list) || !r.empty() || list.empty()) {
    return false;
  }
  out.server_names = server_name_list(list.rest());
  bool host_seen = false;
  while (!list.empty()) {
    std::uint8_t type = 0;
    byte_reader name;
    if (!list.read_u8(type) || !list.read_u16_prefixed(name)) {
      return false;
    }
    if (type != 0) {
      continue;  // no other name type is defined; skip it rather than guess
    }
    if (host_seen || name.empty()) {
      return false;
    }
    out.sni = name.rest();
    for (std::uint8_t c = 0; name.read_u8(c);) {
      if (c == 0) {
        return false;
      }
    }
    host_seen = true;
  }
  return true;
}

// application_layer_protocol_negotiation extension body (RFC 7301 section 3.1):
//
//   +-------------------------------+
//   | protocol_name_list length (2) |
//   +---------------+---------------+----------------+
//   | name len (1)  | ProtocolName (1..255 bytes)    |  repeated, at least once
//   +---------------+--------------------------------+
bool parse_alpn(std::span<const std::uint8_t> body, client_hello& out) {
  byte_reader r(body);
  byte_reader list;
  if (!r.read_u16_prefixed(list) || !r.empty() || list.empty()) {
    return false;
  }
  out.alpn = opaque8_list(list.rest());
  while (!list.empty()) {
    byte_reader name;
    if (!list.read_u8_prefixed(name) || name.empty()) {
      return false;
    }
  }
  return true;
}

// key_share extension body (RFC 8446 section 4.2.8); client_shares may be empty:
//
//   +-------------------------------+
//   | client_shares length (2)      |
//   +---------------+---------------+---------------+---------------+-------------------+
//   | group (2)                     | key_exchange length (2)       | key_exchange ...  |  repeated
//   +---------------+---------------+---------------+---------------+-------------------+
bool parse_key_share(std::span<const std::uint8_t> body, client_hello& out) {
  byte_reader r(body);
  byte_reader list;
  if (!r.read_u16_prefixed(list) || !r.empty()) {
    return false;
  }
  out.key_shares = key_share_list(list.rest());
  while (!list.empty()) {
    std::uint16_t group = 0;
    byte_reader key;
    if (!list.read_u16(group) || !list.read_u16_prefixed(key) || key.empty()) {
      return false;
    }
    out.grease_present = out.grease_present || is_grease(group);
  }
  return true;
}

// encrypted_client_hello extension body (draft-ietf-tls-esni, section 5), outer form:
//
//   +---------------+---------------+---------------+---------------+---------------+
//   | type (1) = 0  | kdf_id (2)                    | aead_id (2)                   |
//   +---------------+---------------+---------------+---------------+---------------+
//   | config_id (1) | enc length (2) + enc, payload length (2) + payload            |
//   +---------------+---------------------------------------------------------------+
//
// GREASE ECH (section 6.2) has the same shape with random values. Only the config_id is read.
void read_ech_config_id(std::span<const std::uint8_t> body, client_hello& out) {
  constexpr std::uint8_t kEchOuter = 0;
  constexpr std::size_t kCipherSuiteLen = 4;
  byte_reader r(body);
  std::uint8_t type = 0;
  std::uint8_t config_id = 0;
  if (r.read_u8(type) && type == kEchOuter && r.skip(kCipherSuiteLen) && r.read_u8(config_id)) {
    out.ech_config_id = config_id;
  }
}

// parse_extension: interpret one extension we know; false means malformed.
bool parse_extension(const extension& ext, client_hello& out) {
  switch (ext.type) {
    case kExtServerName:
      out.sni_present = true;
      return parse_server_name(ext.body, out);
    case kExtAlpn:
      out.alpn_present = true;
      return parse_alpn(ext.body, out);
    case kExtSupportedVersions:
      out.supported_versions_present = true;
      return read_u16_vector(ext.body, 1, out.supported_versions);
    case kExtSignatureAlgorithms:
      out.signature_algorithms_present = true;
      return read_u16_vector(ext.body, 2, out.signature_algorithms);
    case kExtSupportedGroups:
      out.supported_groups_present = true;
      return read_u16_vector(ext.body, 2, out.supported_groups);
    case kExtEcPointFormats: {
      out.ec_point_formats_present = true;
      byte_reader r(ext.body);
      byte_reader list;
      if (!r.read_u8_prefixed(list) || !r.empty() || list.empty()) {
        return false;
      }
      out.ec_point_formats = list.rest();
      return true;
    }
    case kExtKeyShare:
      out.key_share_present = true;
      return parse_key_share(ext.body, out);
    case kExtEncryptedClientHello:
      out.ech_present = true;
      read_ech_config_id(ext.body, out);
      return true;
    case kExtPreSharedKey:
      out.psk_present = true;
      return true;
    default:
      return true;
  }
}

// duplicate_finder: finds an extension type seen twice (RFC 8446 4.2 forbids it; accepting it
// would let two parsers read two different SNIs from one hello). A 256-bucket filter answers
// "certainly new" for almost every type; a possible repeat is confirmed by walking the types seen
// so far, and after kMaxRescans such walks it switches to an exact 65536-bit set, so a hostile
// hello with thousands of colliding types costs linear time, not quadratic.
class duplicate_finder {
 public:
  explicit duplicate_finder(const extension_list& exts) : exts_(exts) {}

  // seen_before: whether `type` (the `index`-th extension) appeared among the first `index`.
  bool seen_before(std::uint16_t type, std::size_t index) {
    if (exact_) {
      return test_and_set(type);
    }
    const std::size_t bucket = detail::extension_bucket(type);
    if (!filter_.test(bucket)) {
      filter_.set(bucket);
      return false;
    }
    if (++rescans_ > kMaxRescans) {
      exact_ = true;
      seen_.emplace();
      std::size_t i = 0;
      for (auto it = exts_.begin(); it != exts_.end() && i < index; ++it, ++i) {
        (void)test_and_set(it->type);
      }
      return test_and_set(type);
    }
    std::size_t i = 0;
    for (auto it = exts_.begin(); it != exts_.end() && i < index; ++it, ++i) {
      if (it->type == type) {
        return true;
      }
    }
    return false;
  }

 private:
  static constexpr int kMaxRescans = 16;

  bool test_and_set(std::uint16_t type) {
    if (seen_->test(type)) {
      return true;
    }
    seen_->set(type);
    return false;
  }

  const extension_list& exts_;
  std::bitset<256> filter_;
  std::optional<std::bitset<65536>> seen_;  // engaged (zeroed) only when exact_ is set
  int rescans_ = 0;
  bool exact_ = false;
};

// ClientHello body (RFC 8446 section 4.1.2), after the 4-byte handshake header:
//
//   +-------------------------------+
//   | legacy_version (2)            |
//   +-------------------------------+----------------------------------------+
//   | random (32)                                                            |
//   +---------------+--------------------------------------------------------+
//   | sid len (1)   | legacy_session_id (0..32)                              |
//   +---------------+---------------+----------------------------------------+
//   | cipher_suites length (2)      | cipher_suites (2 each, at least one)   |
//   +---------------+---------------+----------------------------------------+
//   | comp len (1)  | legacy_compression_methods (at least one)              |
//   +---------------+---------------+----------------------------------------+
//   | extensions length (2)         | extensions: type (2), length (2), body |  optional
//   +-------------------------------+----------------------------------------+
//
// Nothing may follow the extensions.
hello_status parse_hello_body(std::span<const std::uint8_t> body, client_hello& out) {
  byte_reader r(body);
  byte_reader session_id;
  byte_reader ciphers;
  byte_reader compression;
  if (!r.read_u16(out.legacy_version) || !r.read_bytes(kRandomLen, out.random) ||
      !r.read_u8_prefixed(session_id) || session_id.remaining() > kMaxSessionIdLen ||
      !r.read_u16_prefixed(ciphers) || ciphers.empty() || ciphers.remaining() % 2 != 0 ||
      !r.read_u8_prefixed(compression) || compression.empty()) {
    return hello_status::malformed;
  }
  out.session_id = session_id.rest();
  out.cipher_suites = u16_list(ciphers.rest());
  out.compression_methods = compression.rest();
  out.grease_present = any_grease(out.cipher_suites);
  if (r.empty()) {
    return hello_status::complete;  // a hello without extensions (TLS 1.2 and older)
  }
  byte_reader exts;
  if (!r.read_u16_prefixed(exts) || !r.empty()) {
    return hello_status::malformed;
  }
  out.extensions_present = true;
  out.extensions = extension_list(exts.rest());
  std::size_t count = 0;
  bool psk_seen = false;
  duplicate_finder duplicates(out.extensions);
  while (!exts.empty()) {
    extension ext;
    if (!detail::next_extension(exts, ext)) {
      return hello_status::malformed;
    }
    // pre_shared_key must be the last extension (RFC 8446 4.2.11).
    if (psk_seen || duplicates.seen_before(ext.type, count) || !parse_extension(ext, out)) {
      return hello_status::malformed;
    }
    psk_seen = ext.type == kExtPreSharedKey;
    out.grease_present = out.grease_present || is_grease(ext.type);
    ++count;
  }
  out.grease_present = out.grease_present || any_grease(out.supported_versions) ||
                       any_grease(out.supported_groups) || any_grease(out.signature_algorithms);
  return hello_status::complete;
}

// SSLv2-format CLIENT-HELLO (RFC 6101 appendix E.2; draft-hickman SSL 2.0), 2-byte header form:
//
//   +-+-------------+---------------+---------------+---------------+---------------+
//   |1| msg length (15 bits)        | msg_type = 1  | version (2)                   |
//   +-+-------------+---------------+---------------+---------------+---------------+
//   | cipher_spec_length (2)        | session_id_length (2)         | challenge_len (2)
//   +---------------+---------------+---------------+---------------+---------------+
//   | cipher_specs (3 each) | session_id (0 or 16) | challenge (16..32)             |
//   +-----------------------+----------------------+--------------------------------+
hello_status parse_sslv2(std::span<const std::uint8_t> in, const hello_limits& limits,
                         client_hello& out) {
  byte_reader r(in);
  std::uint16_t header = 0;
  if (!r.read_u16(header)) {
    return hello_status::incomplete;
  }
  const std::size_t len = header & 0x7fffU;
  std::uint8_t msg_type = 0;
  if (!r.peek_u8(msg_type)) {
    return hello_status::incomplete;
  }
  if (msg_type != kHandshakeClientHello) {
    return hello_status::not_tls;
  }
  byte_reader version_reader = r;
  std::uint8_t ignored = 0;
  std::uint8_t major = 0;
  if (!version_reader.read_u8(ignored) || !version_reader.read_u8(major)) {
    return hello_status::incomplete;
  }
  if (major != 0 && major != 3) {
    return hello_status::not_tls;
  }
  if (len > limits.max_handshake_len) {
    return hello_status::too_large;
  }
  byte_reader msg;
  if (!r.read_sub(len, msg)) {
    return hello_status::incomplete;
  }
  std::uint16_t specs_len = 0;
  std::uint16_t session_id_len = 0;
  std::uint16_t challenge_len = 0;
  std::span<const std::uint8_t> specs;
  if (!msg.skip(1) || !msg.read_u16(out.legacy_version) || !msg.read_u16(specs_len) ||
      !msg.read_u16(session_id_len) || !msg.read_u16(challenge_len) || specs_len == 0 ||
      specs_len % 3 != 0 || (session_id_len != 0 && session_id_len != 16) || challenge_len < 16 ||
      challenge_len > 32 || !msg.read_bytes(specs_len, specs) ||
      !msg.read_bytes(session_id_len, out.session_id) ||
      !msg.read_bytes(challenge_len, out.random) || !msg.empty()) {
    return hello_status::malformed;
  }
  out.format = hello_format::sslv2;
  out.record_version = 0x0002;
  out.sslv2_cipher_specs = u24_list(specs);
  out.records = 1;
  out.handshake_len = len;
  out.wire_len = len + 2;
  for (std::uint32_t spec : out.sslv2_cipher_specs) {
    // A TLS suite travels as 0x00 followed by its two bytes.
    out.grease_present =
        out.grease_present || (spec <= 0xffffU && is_grease(static_cast<std::uint16_t>(spec)));
  }
  return hello_status::complete;
}

// is_tls_record_type: content types a TLS peer could send first (besides handshake).
bool is_tls_record_type(std::uint8_t type) {
  return type == kContentChangeCipherSpec || type == kContentAlert ||
         type == kContentApplicationData || type == kContentHeartbeat;
}

}  // namespace

hello_status parse_client_hello(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch,
                                client_hello& out, const hello_limits& limits) {
  out = client_hello{};
  byte_reader r(in);
  // A PostgreSQL client asks for TLS with an SSLRequest, then sends its hello once the server
  // said 'S'. Any prefix of the request may still become one.
  if (byte_reader(kSslRequest).starts_with(in)) {
    return hello_status::incomplete;
  }
  if (r.starts_with(kSslRequest)) {
    (void)r.skip(kPostgresSslRequestLen);
    out.postgres_ssl_request = true;
    out.tls_offset = kPostgresSslRequestLen;
  }
  std::uint8_t first = 0;
  if (!r.peek_u8(first)) {
    return hello_status::incomplete;
  }
  if ((first & 0x80U) != 0) {
    return parse_sslv2(r.rest(), limits, out);
  }
  if (first != kContentHandshake && !is_tls_record_type(first)) {
    return hello_status::not_tls;
  }
  byte_reader after_type = r;
  std::uint8_t major = 0;
  if (!after_type.skip(1) || !after_type.read_u8(major)) {
    return hello_status::incomplete;
  }
  if (major != 3) {
    return hello_status::not_tls;
  }
  if (first != kContentHandshake) {
    return hello_status::malformed;  // TLS, but a record that cannot start a handshake
  }
  handshake_message msg;
  const hello_status framing = read_handshake_message(r.rest(), scratch, kHandshakeClientHello,
                                                      limits.max_handshake_len, msg);
  out.records = msg.records;
  out.record_version = msg.record_version;
  // Counted on the records started so far too: the bound holds while the hello still grows.
  if (msg.records > limits.max_records &&
      (framing == hello_status::complete || framing == hello_status::incomplete)) {
    out.too_many_records = true;
    return hello_status::too_large;
  }
  if (framing != hello_status::complete) {
    return framing;
  }
  out.handshake_len = msg.message_len;
  out.wire_len = msg.wire_len;
  return parse_hello_body(msg.body, out);
}

namespace {

// gather_hello_prefix: the handshake bytes of the hello's records in `in` (past any PostgreSQL
// SSLRequest), as far as they have arrived: a borrowed view of `in` while they sit in one record,
// else copied into `scratch` (at most its size). Stops at the first record that is not a
// handshake record.
std::span<const std::uint8_t> gather_hello_prefix(std::span<const std::uint8_t> in,
                                                  std::span<std::uint8_t> scratch) {
  byte_reader r(in);
  if (r.starts_with(kSslRequest)) {
    (void)r.skip(kPostgresSslRequestLen);
  }
  std::span<const std::uint8_t> first;
  std::size_t gathered = 0;
  for (int record = 0;; ++record) {
    std::uint8_t type = 0;
    std::uint16_t version = 0;
    std::uint16_t len = 0;
    std::span<const std::uint8_t> fragment;
    if (!r.read_u8(type) || type != kContentHandshake || !r.read_u16(version) || !r.read_u16(len) ||
        len == 0 || len > kMaxRecordPayload) {
      break;
    }
    const bool cut = r.remaining() < len;
    if (!r.read_bytes(cut ? r.remaining() : len, fragment)) {
      break;
    }
    if (record == 0) {
      first = fragment;
      if (cut || r.empty()) {
        return first;  // nothing after the first record: no copy
      }
      const std::size_t take = std::min(first.size(), scratch.size());
      std::ranges::copy(first.first(take), scratch.begin());
      gathered = take;
      continue;
    }
    const std::size_t take = std::min(fragment.size(), scratch.size() - gathered);
    std::ranges::copy(fragment.first(take), scratch.subspan(gathered, take).begin());
    gathered += take;
    if (cut || gathered == scratch.size()) {
      break;
    }
  }
  return gathered == 0 ? first : std::span<const std::uint8_t>(scratch).first(gathered);
}

}  // namespace

bool server_name_arrived(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch) {
  byte_reader msg(gather_hello_prefix(in, scratch));
  std::uint8_t msg_type = 0;
  std::uint32_t body_len = 0;
  if (!msg.read_u8(msg_type) || msg_type != kHandshakeClientHello || !msg.read_u24(body_len)) {
    return false;
  }
  // The body as far as it arrived (never past its announced length), walked up to server_name.
  byte_reader body;
  if (!msg.read_sub(std::min<std::size_t>(body_len, msg.remaining()), body)) {
    return false;
  }
  byte_reader ignored;
  std::uint16_t exts_len = 0;
  if (!body.skip(2 + kRandomLen) || !body.read_u8_prefixed(ignored) ||
      !body.read_u16_prefixed(ignored) || !body.read_u8_prefixed(ignored) ||
      !body.read_u16(exts_len)) {
    return false;
  }
  for (;;) {
    std::uint16_t type = 0;
    byte_reader ext;
    if (!body.read_u16(type) || !body.read_u16_prefixed(ext)) {
      return false;
    }
    if (type == kExtServerName) {
      return true;
    }
  }
}

}  // namespace linesman::tls
