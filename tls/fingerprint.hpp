// fingerprint: JA3 and JA4 client fingerprints of a parsed ClientHello.
//
// JA3 (Salesforce): "SSLVersion,Ciphers,Extensions,EllipticCurves,EllipticCurvePointFormats" in
// decimal, '-' separated, wire order, GREASE (RFC 8701) removed; the fingerprint is its MD5.
// JA4 (FoxIO, technical_details/JA4.md): "t13d1516h2_<ciphers>_<extensions>", with the raw (_r),
// original-order (_o) and raw original-order (_ro) variants.
//
// These run after parsing, not on the parse path: they build std::strings and take their hashes
// from OpenSSL's libcrypto (linked privately by tls/, never included by the parser).
#pragma once

#include "tls/client_hello.hpp"

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace linesman::tls {

// kJa3Size / kJa4Size: the most characters ja3().md5 and ja4().ja4 hold: MD5 in hex, and
// "t13d1516h2" + '_' + 12 + '_' + 12 hex; fewer only when libcrypto refuses a digest (an empty md5,
// empty JA4 hash parts). A record keeps them inline at these sizes (proxy/observation.hpp).
inline constexpr std::size_t kJa3Size = 32;
inline constexpr std::size_t kJa4Size = 36;

struct ja3_fingerprint {
  std::string full;  // the JA3 string
  std::string md5;   // lower-case hex MD5 of `full`
};

// ja4_transport: JA4's first character: 't' TCP, 'q' QUIC, 'd' DTLS.
enum class ja4_transport : std::uint8_t { tcp, quic, dtls };

struct ja4_fingerprint {
  std::string ja4;     // t13d1516h2_8daaf6152771_e5627efa2ab1
  std::string ja4_r;   // sorted lists in clear
  std::string ja4_o;   // hashes of the lists in wire order
  std::string ja4_ro;  // wire-order lists in clear
};

// ja3: the JA3 string and hash of `hello` (the SSLv2 format uses its TLS cipher specs, those
// whose first byte is 0, and has no extensions). Never fails.
ja3_fingerprint ja3(const client_hello& hello);

// ja4: the four JA4 strings of `hello`. Never fails; unknown versions give "00".
ja4_fingerprint ja4(const client_hello& hello, ja4_transport transport = ja4_transport::tcp);

// hello_fingerprints: the two a proxy records for every connection, ja3().md5 and ja4().ja4
// (TCP), inline: no allocation once the thread has seen the client's lists (see fingerprints()).
struct hello_fingerprints {
  std::array<char, kJa3Size> ja3_md5{};
  std::size_t ja3_len = 0;
  std::array<char, kJa4Size> ja4{};
  std::size_t ja4_len = 0;

  [[nodiscard]] std::string_view ja3_text() const { return {ja3_md5.data(), ja3_len}; }
  [[nodiscard]] std::string_view ja4_text() const { return {ja4.data(), ja4_len}; }
};

// fingerprints: ja3(hello).md5 and ja4(hello).ja4, equal to them byte for byte. Each is kept per
// thread with the values it was computed from (the lists in the order the fingerprint reads them,
// GREASE removed), and a hello whose values repeat reuses it without writing the texts again.
// Never fails.
hello_fingerprints fingerprints(const client_hello& hello);

}  // namespace linesman::tls
