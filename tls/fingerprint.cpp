#include "tls/fingerprint.hpp"

#include "tls/byte_reader.hpp"
#include "tls/hex.hpp"
#include "tls/names.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include <openssl/evp.h>

namespace linesman::tls {

namespace {

constexpr std::string_view kZeroHash = "000000000000";
constexpr std::size_t kJa4HashLen = 12;

// digest_hex: hex of `md` over `text`; empty if libcrypto fails (it does not for MD5/SHA-256 in
// the default provider, but a FIPS-only configuration could refuse MD5).
// md5 / sha256: fetched once for the process (EVP_md5() would re-fetch the implementation on every
// digest in OpenSSL 3, which costs more than the digest); never freed, on purpose.
const EVP_MD* md5() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return md;
}
const EVP_MD* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

std::string digest_hex(const EVP_MD* md, std::string_view text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int out_len = 0;
  if (md == nullptr ||
      EVP_Digest(text.data(), text.size(), out.data(), &out_len, md, nullptr) != 1) {
    return {};
  }
  return to_hex(std::span<const std::uint8_t>(out).first(out_len));
}

// without_grease: the values of `list` in wire order, GREASE removed.
std::vector<std::uint16_t> without_grease(const u16_list& list) {
  std::vector<std::uint16_t> out;
  for (std::uint16_t v : list) {
    if (!is_grease(v)) {
      out.push_back(v);
    }
  }
  return out;
}

// ciphers_of: the cipher suites in wire order, GREASE removed; for the SSLv2 format the specs that
// carry a TLS suite (first byte 0).
std::vector<std::uint16_t> ciphers_of(const client_hello& hello) {
  if (hello.format == hello_format::sslv2) {
    std::vector<std::uint16_t> out;
    for (std::uint32_t spec : hello.sslv2_cipher_specs) {
      if (spec <= 0xffffU && !is_grease(static_cast<std::uint16_t>(spec))) {
        out.push_back(static_cast<std::uint16_t>(spec));
      }
    }
    return out;
  }
  return without_grease(hello.cipher_suites);
}

std::vector<std::uint16_t> extensions_of(const client_hello& hello) {
  std::vector<std::uint16_t> out;
  for (const extension& e : hello.extensions) {
    if (!is_grease(e.type)) {
      out.push_back(e.type);
    }
  }
  return out;
}

template <typename T>
void append_decimal_list(std::string& s, const std::vector<T>& values) {
  bool first = true;
  for (T v : values) {
    if (!first) {
      s.push_back('-');
    }
    first = false;
    s += std::to_string(v);
  }
}

std::string hex_list(const std::vector<std::uint16_t>& values) {
  std::string s;
  s.reserve(values.size() * 5);
  for (std::uint16_t v : values) {
    if (!s.empty()) {
      s.push_back(',');
    }
    append_hex16(s, v);
  }
  return s;
}

// ja4_version: from the highest non-GREASE supported_versions entry, else legacy_version.
std::string_view ja4_version(const client_hello& hello) {
  std::uint16_t version = hello.legacy_version;
  if (hello.format == hello_format::tls && hello.supported_versions_present) {
    std::uint16_t best = 0;
    for (std::uint16_t v : hello.supported_versions) {
      if (!is_grease(v)) {
        best = std::max(best, v);
      }
    }
    if (best != 0) {
      version = best;
    }
  }
  switch (version) {
    case 0x0304:
      return "13";
    case 0x0303:
      return "12";
    case 0x0302:
      return "11";
    case 0x0301:
      return "10";
    case 0x0300:
      return "s3";
    case 0x0002:
      return "s2";
    case 0xfeff:
      return "d1";
    case 0xfefd:
      return "d2";
    case 0xfefc:
      return "d3";
    default:
      return "00";
  }
}

bool is_alnum(std::uint8_t c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

// ja4_alpn: first and last character of the first ALPN value, "00" without one; when either is
// not alphanumeric, the first and last characters of the value's hex form.
std::string ja4_alpn(const client_hello& hello) {
  auto it = hello.alpn.begin();
  if (!hello.alpn_present || it == hello.alpn.end() || it->empty()) {
    return "00";
  }
  byte_reader r(*it);
  std::uint8_t first = 0;
  std::uint8_t last = 0;
  if (!r.peek_u8(first) || !r.skip(it->size() - 1) || !r.read_u8(last)) {
    return "00";  // unreachable: the value is not empty
  }
  if (is_alnum(first) && is_alnum(last)) {
    return {static_cast<char>(first), static_cast<char>(last)};
  }
  return {hex_digit(static_cast<unsigned>(first) >> 4U), hex_digit(last)};
}

std::string two_digits(std::size_t n) {
  n = std::min<std::size_t>(n, 99);
  return {static_cast<char>('0' + n / 10), static_cast<char>('0' + n % 10)};
}

std::string ja4_hash(std::string_view text) {
  if (text.empty()) {
    return std::string(kZeroHash);
  }
  return digest_hex(sha256(), text).substr(0, kJa4HashLen);
}

}  // namespace

ja3_fingerprint ja3(const client_hello& hello) {
  ja3_fingerprint out;
  std::string& s = out.full;
  s = std::to_string(hello.legacy_version);
  s.push_back(',');
  append_decimal_list(s, ciphers_of(hello));
  s.push_back(',');
  append_decimal_list(s, extensions_of(hello));
  s.push_back(',');
  append_decimal_list(s, without_grease(hello.supported_groups));
  s.push_back(',');
  std::vector<unsigned> formats;
  byte_reader r(hello.ec_point_formats);
  for (std::uint8_t f = 0; r.read_u8(f);) {
    formats.push_back(f);
  }
  append_decimal_list(s, formats);
  out.md5 = digest_hex(md5(), s);
  return out;
}

ja4_fingerprint ja4(const client_hello& hello, ja4_transport transport) {
  const std::vector<std::uint16_t> ciphers = ciphers_of(hello);
  const std::vector<std::uint16_t> exts = extensions_of(hello);
  const std::vector<std::uint16_t> sigalgs = without_grease(hello.signature_algorithms);

  std::string a;
  a.push_back(transport == ja4_transport::quic   ? 'q'
              : transport == ja4_transport::dtls ? 'd'
                                                 : 't');
  a += ja4_version(hello);
  a.push_back(hello.sni_present ? 'd' : 'i');
  a += two_digits(ciphers.size());
  a += two_digits(exts.size());
  a += ja4_alpn(hello);

  std::vector<std::uint16_t> sorted_ciphers = ciphers;
  std::ranges::sort(sorted_ciphers);
  // The sorted extension list leaves out SNI and ALPN, which say where the client goes rather
  // than what it is; the original-order variants keep them.
  std::vector<std::uint16_t> sorted_exts;
  for (std::uint16_t e : exts) {
    if (e != kExtServerName && e != kExtAlpn) {
      sorted_exts.push_back(e);
    }
  }
  std::ranges::sort(sorted_exts);

  const std::string sig_part = sigalgs.empty() ? std::string() : "_" + hex_list(sigalgs);
  const std::string b_sorted = hex_list(sorted_ciphers);
  const std::string b_orig = hex_list(ciphers);
  const std::string c_sorted =
      sorted_exts.empty() ? std::string() : hex_list(sorted_exts) + sig_part;
  const std::string c_orig = exts.empty() ? std::string() : hex_list(exts) + sig_part;

  ja4_fingerprint out;
  out.ja4 = a + "_" + ja4_hash(b_sorted) + "_" + ja4_hash(c_sorted);
  out.ja4_r = a + "_" + b_sorted + "_" + c_sorted;
  out.ja4_o = a + "_" + ja4_hash(b_orig) + "_" + ja4_hash(c_orig);
  out.ja4_ro = a + "_" + b_orig + "_" + c_orig;
  return out;
}

}  // namespace linesman::tls
