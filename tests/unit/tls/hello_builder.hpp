// hello_builder: builds ClientHello bytes for tests (test code only; indexes freely).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace linesman::tls::testing {

using bytes = std::vector<std::uint8_t>;

inline void put_u8(bytes& b, std::size_t v) { b.push_back(static_cast<std::uint8_t>(v)); }
inline void put_u16(bytes& b, std::size_t v) {
  put_u8(b, (v >> 8) & 0xff);
  put_u8(b, v & 0xff);
}
inline void put_u24(bytes& b, std::size_t v) {
  put_u8(b, (v >> 16) & 0xff);
  put_u16(b, v & 0xffff);
}
inline void append(bytes& b, const bytes& more) { b.insert(b.end(), more.begin(), more.end()); }
inline bytes u8_prefixed(const bytes& body) {
  bytes b;
  put_u8(b, body.size());
  append(b, body);
  return b;
}
inline bytes u16_prefixed(const bytes& body) {
  bytes b;
  put_u16(b, body.size());
  append(b, body);
  return b;
}
inline bytes u16s(std::initializer_list<std::uint16_t> values) {
  bytes b;
  for (std::uint16_t v : values) {
    put_u16(b, v);
  }
  return b;
}
inline bytes text(std::string_view s) { return bytes(s.begin(), s.end()); }

// Extension bodies.
inline bytes sni_body(std::initializer_list<std::string> names) {
  bytes list;
  for (const std::string& n : names) {
    put_u8(list, 0);
    append(list, u16_prefixed(text(n)));
  }
  return u16_prefixed(list);
}
inline bytes alpn_body(std::initializer_list<std::string> names) {
  bytes list;
  for (const std::string& n : names) {
    append(list, u8_prefixed(text(n)));
  }
  return u16_prefixed(list);
}
inline bytes versions_body(std::initializer_list<std::uint16_t> v) { return u8_prefixed(u16s(v)); }
inline bytes u16_list_body(std::initializer_list<std::uint16_t> v) { return u16_prefixed(u16s(v)); }
inline bytes key_share_body(std::initializer_list<std::uint16_t> groups) {
  bytes list;
  for (std::uint16_t g : groups) {
    put_u16(list, g);
    append(list, u16_prefixed(bytes(32, 0x42)));
  }
  return u16_prefixed(list);
}

struct hello_builder {
  std::uint16_t legacy_version = 0x0303;
  bytes session_id = bytes(32, 0x11);
  std::vector<std::uint16_t> ciphers = {0x1301, 0x1302, 0xc02f};
  bytes compression = {0};
  bool with_extensions = true;
  std::vector<std::pair<std::uint16_t, bytes>> extensions;

  hello_builder& ext(std::uint16_t type, bytes body) {
    extensions.emplace_back(type, std::move(body));
    return *this;
  }

  [[nodiscard]] bytes body() const {
    bytes b;
    put_u16(b, legacy_version);
    append(b, bytes(32, 0x5a));
    append(b, u8_prefixed(session_id));
    bytes cs;
    for (std::uint16_t c : ciphers) {
      put_u16(cs, c);
    }
    append(b, u16_prefixed(cs));
    append(b, u8_prefixed(compression));
    if (with_extensions) {
      bytes exts;
      for (const auto& [type, ext_body] : extensions) {
        put_u16(exts, type);
        append(exts, u16_prefixed(ext_body));
      }
      append(b, u16_prefixed(exts));
    }
    return b;
  }

  // handshake: the message with its 4-byte header.
  [[nodiscard]] bytes handshake() const { return handshake_of(body()); }

  static bytes handshake_of(const bytes& body, std::uint8_t type = 1) {
    bytes h;
    put_u8(h, type);
    put_u24(h, body.size());
    append(h, body);
    return h;
  }

  // frame: `message` in handshake records, the fragments sized by `sizes` (the rest in a last
  // record).
  static bytes frame(const bytes& message, const std::vector<std::size_t>& sizes = {},
                     std::uint16_t record_version = 0x0301) {
    bytes out;
    std::size_t at = 0;
    auto record = [&](std::size_t n) {
      put_u8(out, 22);
      put_u16(out, record_version);
      put_u16(out, n);
      out.insert(out.end(), message.begin() + static_cast<std::ptrdiff_t>(at),
                 message.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    };
    for (std::size_t n : sizes) {
      if (at + n >= message.size()) {
        break;
      }
      record(n);
    }
    record(message.size() - at);
    return out;
  }

  [[nodiscard]] bytes wire(const std::vector<std::size_t>& sizes = {}) const {
    return frame(handshake(), sizes);
  }
};

// typical: a TLS 1.3 hello like a modern client's, GREASE included.
inline hello_builder typical() {
  hello_builder b;
  b.ciphers = {0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f};
  b.ext(0x1a1a, {})
      .ext(0x0000, sni_body({"www.example.test"}))
      .ext(0x0017, {})
      .ext(0x000a, u16_list_body({0x2a2a, 0x001d, 0x0017}))
      .ext(0x000b, u8_prefixed({0}))
      .ext(0x0010, alpn_body({"h2", "http/1.1"}))
      .ext(0x000d, u16_list_body({0x0403, 0x0804, 0x0401}))
      .ext(0x002b, versions_body({0x3a3a, 0x0304, 0x0303}))
      .ext(0x0033, key_share_body({0x2a2a, 0x001d}))
      .ext(0xfe0d, bytes(40, 0x01))
      .ext(0x4a4a, {0});
  return b;
}

}  // namespace linesman::tls::testing
