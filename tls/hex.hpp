// hex: the one lowercase hexadecimal encoder of linesman. Standard library only, header only.
// hex_digit allocates nothing, so the parsers' fixed buffers (tls::summary_text, code_name, the
// PROXY header's address text) use it; the std::string appenders are for callers off the parse
// path (fingerprints, reports, the access-log record).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace linesman::tls {

inline constexpr std::string_view kHexDigits = "0123456789abcdef";

// hex_digit: the lowercase digit for the low four bits of `v` (higher bits are ignored).
constexpr char hex_digit(unsigned v) noexcept { return kHexDigits[v & 0xfU]; }

// append_hex: two digits per byte of `bytes`, high nibble first ("1603").
inline void append_hex(std::string& out, std::span<const std::uint8_t> bytes) {
  out.reserve(out.size() + bytes.size() * 2);
  for (const std::uint8_t b : bytes) {
    out.push_back(hex_digit(static_cast<unsigned>(b) >> 4U));
    out.push_back(hex_digit(b));
  }
}

// to_hex: append_hex into a new string.
inline std::string to_hex(std::span<const std::uint8_t> bytes) {
  std::string out;
  append_hex(out, bytes);
  return out;
}

// append_hex16: the four digits of `v`, most significant first ("0303"), no prefix.
inline void append_hex16(std::string& out, std::uint16_t v) {
  for (unsigned shift = 16; shift > 0;) {
    shift -= 4;
    out.push_back(hex_digit(static_cast<unsigned>(v) >> shift));
  }
}

// append_hex_escape: `c` as the four characters "\xNN" (the escape used for unprintable bytes in
// summaries, banners and the access log's text fields).
inline void append_hex_escape(std::string& out, std::uint8_t c) {
  out += "\\x";
  out.push_back(hex_digit(static_cast<unsigned>(c) >> 4U));
  out.push_back(hex_digit(c));
}

}  // namespace linesman::tls
