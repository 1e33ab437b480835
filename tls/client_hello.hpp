// client_hello: parse a client's first flight into a ClientHello (RFC 8446 section 4.1.2), or say
// why it is not one yet, or not one at all.
//
// Recognized first flights:
//   - a TLS ClientHello in one or more handshake records (RFC 8446 5.1, 4.1.2);
//   - an SSLv2-format ClientHello (RFC 6101 appendix E.2; old Java and OpenSSL can send one);
//   - either of them after a PostgreSQL SSLRequest (8 bytes), which is skipped and reported, the
//     way Traefik v3 handles PostgreSQL STARTTLS.
//
// Everything the parser returns is a borrowed view: spans and list views point into the caller's
// `in` (hello in one record) or `scratch` (hello spanning records). They are valid while those
// buffers are alive and unchanged; copy out what must outlive them.
#pragma once

#include "tls/byte_reader.hpp"
#include "tls/record.hpp"

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <span>

namespace linesman::tls {

// Extension code points this parser interprets (IANA "TLS ExtensionType Values").
inline constexpr std::uint16_t kExtServerName = 0x0000;
inline constexpr std::uint16_t kExtSupportedGroups = 0x000a;
inline constexpr std::uint16_t kExtEcPointFormats = 0x000b;
inline constexpr std::uint16_t kExtSignatureAlgorithms = 0x000d;
inline constexpr std::uint16_t kExtAlpn = 0x0010;
inline constexpr std::uint16_t kExtPreSharedKey = 0x0029;
inline constexpr std::uint16_t kExtSupportedVersions = 0x002b;
inline constexpr std::uint16_t kExtKeyShare = 0x0033;
inline constexpr std::uint16_t kExtEncryptedClientHello = 0xfe0d;

// kPostgresSslRequest: Int32 length 8, Int32 code 80877103 (PostgreSQL protocol, "SSLRequest").
inline constexpr std::size_t kPostgresSslRequestLen = 8;

// entry_list: a borrowed, already-validated sequence of wire entries, iterated by decoding one
// entry at a time with `Next`. Iteration stops early (never reads out of bounds) if an entry does
// not decode, which cannot happen for lists produced by parse_client_hello.
template <typename Entry, bool (*Next)(byte_reader&, Entry&)>
class entry_list {
 public:
  class iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = Entry;
    using difference_type = std::ptrdiff_t;
    using pointer = const Entry*;
    using reference = const Entry&;

    iterator() = default;
    explicit iterator(byte_reader r) : rest_(r), at_end_(false) { advance(); }
    reference operator*() const { return current_; }
    pointer operator->() const { return &current_; }
    iterator& operator++() {
      advance();
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      advance();
      return old;
    }
    // Two iterators over the same list are equal when they have the same bytes left.
    friend bool operator==(const iterator& a, const iterator& b) {
      return a.at_end_ == b.at_end_ && a.rest_.remaining() == b.rest_.remaining();
    }

   private:
    void advance() {
      if (!Next(rest_, current_)) {
        rest_ = byte_reader{};
        at_end_ = true;
      }
    }
    byte_reader rest_;
    Entry current_{};
    bool at_end_ = true;
  };

  entry_list() = default;
  explicit entry_list(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  [[nodiscard]] iterator begin() const { return iterator(byte_reader(bytes_)); }
  [[nodiscard]] iterator end() const { return iterator(); }
  [[nodiscard]] bool empty() const { return bytes_.empty(); }
  // bytes: the list's wire bytes (without its length prefix).
  [[nodiscard]] std::span<const std::uint8_t> bytes() const { return bytes_; }
  // size: the number of entries (a walk over the list).
  [[nodiscard]] std::size_t size() const {
    std::size_t n = 0;
    for (auto it = begin(); it != end(); ++it) {
      ++n;
    }
    return n;
  }

 private:
  std::span<const std::uint8_t> bytes_;
};

namespace detail {
bool next_u16(byte_reader& r, std::uint16_t& out);
bool next_u24(byte_reader& r, std::uint32_t& out);
bool next_u8_opaque(byte_reader& r, std::span<const std::uint8_t>& out);
}  // namespace detail

// extension: one extension of the hello, in wire order. `body` is borrowed.
struct extension {
  std::uint16_t type = 0;
  std::span<const std::uint8_t> body;
};
// server_name: one entry of the server_name extension; name_type 0 is host_name.
struct server_name {
  std::uint8_t name_type = 0;
  std::span<const std::uint8_t> name;
};
// key_share_entry: one client share (RFC 8446 4.2.8); `key` is borrowed.
struct key_share_entry {
  std::uint16_t group = 0;
  std::span<const std::uint8_t> key;
};

namespace detail {
// extension_bucket: the duplicate-extension filter's bucket (0..255) for a type: a Fibonacci
// hash, so that GREASE values (0x0a0a, 0x1a1a, ...) and common types spread out. Exposed for tests.
constexpr std::size_t extension_bucket(std::uint16_t type) {
  return (static_cast<std::uint32_t>(type) * 0x9e3779b1U) >> 24U;
}
bool next_extension(byte_reader& r, extension& out);
bool next_server_name(byte_reader& r, server_name& out);
bool next_key_share(byte_reader& r, key_share_entry& out);
}  // namespace detail

using u16_list = entry_list<std::uint16_t, detail::next_u16>;
using u24_list = entry_list<std::uint32_t, detail::next_u24>;
// opaque8_list: entries each with a one-byte length prefix (ALPN protocol names).
using opaque8_list = entry_list<std::span<const std::uint8_t>, detail::next_u8_opaque>;
using extension_list = entry_list<extension, detail::next_extension>;
using server_name_list = entry_list<server_name, detail::next_server_name>;
using key_share_list = entry_list<key_share_entry, detail::next_key_share>;

enum class hello_format : std::uint8_t { tls, sslv2 };

// client_hello: the parsed fields. Every span and list borrows `in` or `scratch` (see top).
struct client_hello {
  hello_format format = hello_format::tls;
  // tls_offset: where the TLS (or SSLv2) bytes start in `in`: 8 after a PostgreSQL SSLRequest.
  std::size_t tls_offset = 0;
  bool postgres_ssl_request = false;

  std::uint16_t record_version = 0;      // first record's version; 0x0002 for the SSLv2 format
  std::uint16_t legacy_version = 0;      // ClientHello.legacy_version (SSLv2: the version field)
  std::span<const std::uint8_t> random;  // SSLv2: the challenge
  std::span<const std::uint8_t> session_id;
  u16_list cipher_suites;       // wire order, GREASE included; empty for the SSLv2 format
  u24_list sslv2_cipher_specs;  // SSLv2 format only: every 3-byte CIPHER-SPEC
  std::span<const std::uint8_t> compression_methods;

  bool extensions_present = false;  // an extensions block is there (possibly empty)
  extension_list extensions;        // wire order, GREASE included

  bool sni_present = false;           // server_name extension present
  server_name_list server_names;      // all entries of server_name
  std::span<const std::uint8_t> sni;  // first host_name (raw bytes; empty when none)
  bool alpn_present = false;
  opaque8_list alpn;  // protocol names, wire order
  bool supported_versions_present = false;
  u16_list supported_versions;  // wire order, GREASE included
  bool signature_algorithms_present = false;
  u16_list signature_algorithms;
  bool supported_groups_present = false;
  u16_list supported_groups;
  bool ec_point_formats_present = false;
  std::span<const std::uint8_t> ec_point_formats;
  bool key_share_present = false;
  key_share_list key_shares;
  bool ech_present = false;  // encrypted_client_hello (real or GREASE ECH)
  // ech_config_id: the config_id of an outer ECHClientHello (0..255); -1 when there is no ECH
  // extension, or it is an inner one, or too short to hold one (its contents are not checked:
  // a server that does not do ECH ignores them, and so do we).
  std::int16_t ech_config_id = -1;
  bool psk_present = false;  // pre_shared_key (a resumption attempt)
  // grease_present: an RFC 8701 GREASE value among versions, ciphers, extensions, groups,
  // signature algorithms or key shares.
  bool grease_present = false;

  int records = 0;                // TLS records the hello spans (1 for SSLv2)
  bool too_many_records = false;  // too_large because of limits.max_records, not the size
  std::size_t handshake_len = 0;  // handshake message incl. its 4-byte header (SSLv2: message)
  std::size_t wire_len = 0;       // bytes from tls_offset to the end of the hello's last record
};

// hello_limits: bounds on what the parser accepts.
struct hello_limits {
  // max_handshake_len: the ClientHello handshake message, header included (16 KiB by default,
  // enough for one full record; real hellos are under 2 KB).
  std::size_t max_handshake_len = 16384;
  // max_records: the records the hello may span. Unbounded by default (the parser itself is
  // linear); a proxy that buffers the wire bytes sets it so that its buffer is bounded by
  // max_handshake_len + 5 * max_records (see proxy/inspect.hpp).
  int max_records = std::numeric_limits<int>::max();
};

// kScratchLen: a scratch buffer this large always suffices for the default limits.
inline constexpr std::size_t kScratchLen = 16384;

// parse_client_hello: parse the client's first flight in `in` (everything received so far; call
// again with the grown buffer after each read). Returns
//   complete    `out` holds the hello; out.tls_offset + out.wire_len bytes of `in` were used;
//   incomplete  a valid prefix: read more (out.records says how many records started so far);
//   malformed   broken framing or grammar, a non-handshake record, a message that is not a
//               ClientHello, or what BoringSSL rejects too: trailing bytes inside an extension,
//               a duplicate extension, a host name that is empty or holds a NUL, two host_names,
//               pre_shared_key not last;
//   too_large   the handshake message is longer than limits.max_handshake_len, or spans records
//               and does not fit `scratch`, or spans more than limits.max_records records
//               (then out.too_many_records is set; known as soon as that many have started);
//   not_tls     the first bytes are neither TLS, SSLv2-format hello nor a PostgreSQL SSLRequest.
// Pure and allocation-free; never reads outside `in`; writes only `scratch` (only when the hello
// spans records) and `out`. `out` is reset first. Results borrow `in`/`scratch` (see top).
hello_status parse_client_hello(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch,
                                client_hello& out, const hello_limits& limits = {});

// server_name_arrived: whether the client's first flight `in` (everything received so far; it may
// still be an incomplete hello) already holds the whole server_name extension of a TLS
// ClientHello, that is whether a peeker that stops reading now could route on its SNI. It reads
// the hello's records as far as they go (a hello spanning records is gathered into `scratch`, at
// most scratch.size() bytes), then walks the body up to the extension. False on anything that is
// not such a prefix (SSLv2 format, not TLS, malformed framing, no server_name yet). Pure and
// allocation-free; writes only `scratch`.
bool server_name_arrived(std::span<const std::uint8_t> in, std::span<std::uint8_t> scratch);

}  // namespace linesman::tls
