// names: IANA/RFC names for TLS code points (protocol versions, cipher suites, named groups,
// alerts) and GREASE.
//
// Every lookup is allocation-free. Known codes map to string_views into static tables (valid for
// the whole program). Unknown codes are formatted into a `code_name` value ("0x%04x" for 16-bit
// codes, "0x%02x" for 8-bit ones) that carries its own small buffer: keep the code_name alive as
// long as you use its view().
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace linesman::tls {

// code_name: the name of a code point, either a static table entry or a formatted hex fallback.
// view() borrows from this object when !known(); copy the text out before it goes away.
class code_name {
 public:
  // named: a known code's static name.
  static code_name named(std::string_view static_name);
  // hex16 / hex8: an unknown code as "0x%04x" / "0x%02x" (lower-case hex).
  static code_name hex16(std::uint16_t code);
  static code_name hex8(std::uint8_t code);

  [[nodiscard]] std::string_view view() const {
    return known_ ? static_ : std::string_view(hex_.data(), hex_len_);
  }
  [[nodiscard]] bool known() const { return known_; }

 private:
  std::string_view static_;
  std::array<char, 6> hex_{};
  std::size_t hex_len_ = 0;
  bool known_ = false;
};

// TLS protocol version code points (ProtocolVersion, RFC 8446 section 4.1.2 and older RFCs).
inline constexpr std::uint16_t kSsl30 = 0x0300;
inline constexpr std::uint16_t kTls10 = 0x0301;
inline constexpr std::uint16_t kTls11 = 0x0302;
inline constexpr std::uint16_t kTls12 = 0x0303;
inline constexpr std::uint16_t kTls13 = 0x0304;

// find_version_name: "1.3", "1.2", "1.1", "1.0" or "SSL 3.0"; empty when the code is unknown
// (including GREASE values and pre-standard TLS 1.3 drafts).
std::string_view find_version_name(std::uint16_t version);
// version_name: find_version_name, or "0x%04x" for an unknown code.
code_name version_name(std::uint16_t version);

// is_grease: whether `value` is one of the 16 GREASE code points of RFC 8701 (0x0a0a, 0x1a1a,
// ..., 0xfafa), used for versions, cipher suites, extensions, groups and signature algorithms.
constexpr bool is_grease(std::uint16_t value) {
  const auto hi = static_cast<std::uint8_t>(value >> 8U);
  const auto lo = static_cast<std::uint8_t>(value & 0xffU);
  return hi == lo && (lo & 0x0fU) == 0x0aU;
}

// find_cipher_suite_name: the IANA name ("TLS_AES_128_GCM_SHA256"); empty when not in our table.
std::string_view find_cipher_suite_name(std::uint16_t suite);
// cipher_suite_name: find_cipher_suite_name, or "0x%04x" for a suite not in our table.
code_name cipher_suite_name(std::uint16_t suite);

// find_group_name: the IANA "TLS Supported Groups" name of a named group ("x25519",
// "secp256r1", "X25519MLKEM768", "ffdhe2048", "X25519Kyber768Draft00"); empty when not in our
// table (including GREASE values, see group_name).
std::string_view find_group_name(std::uint16_t group);
// group_name: "grease" for an RFC 8701 GREASE value, else find_group_name, else "0x%04x".
code_name group_name(std::uint16_t group);
// is_post_quantum_group: whether `group` is a post-quantum key exchange: an ML-KEM hybrid
// (X25519MLKEM768, SecP256r1MLKEM768, SecP384r1MLKEM1024, curveSM2MLKEM768), one of the
// pre-standard Kyber hybrids browsers shipped first (X25519Kyber768Draft00,
// SecP256r1Kyber768Draft00), or pure ML-KEM (MLKEM512/768/1024).
bool is_post_quantum_group(std::uint16_t group);

// Alert levels (RFC 8446 section 6).
inline constexpr std::uint8_t kAlertWarning = 1;
inline constexpr std::uint8_t kAlertFatal = 2;

// find_alert_level_name: "warning" (1) or "fatal" (2); empty otherwise.
std::string_view find_alert_level_name(std::uint8_t level);
// alert_level_name: find_alert_level_name, or "0x%02x".
code_name alert_level_name(std::uint8_t level);

// find_alert_description_name: RFC 8446 section 6 names ("handshake_failure",
// "unrecognized_name", ...) plus the legacy RFC 5246/6066 ones ("decryption_failed",
// "no_renegotiation", ...); empty when unknown.
std::string_view find_alert_description_name(std::uint8_t description);
// alert_description_name: find_alert_description_name, or "0x%02x".
code_name alert_description_name(std::uint8_t description);

}  // namespace linesman::tls
