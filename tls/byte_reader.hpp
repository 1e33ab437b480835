// byte_reader: the one type in tls/ that touches raw, untrusted bytes.
//
// A non-owning cursor over a std::span<const std::uint8_t>. Every getter checks that enough bytes
// remain before it reads or advances, returns false (and leaves the cursor and `out` untouched)
// when they do not, and is [[nodiscard]] so a failed read cannot be ignored. Parsers are written
// as chains of these checked reads; nothing else in tls/ indexes a buffer or does pointer
// arithmetic.
//
// Lifetime: the reader and every span it hands out borrow the caller's buffer; they are valid as
// long as that buffer is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace linesman::tls {

class byte_reader {
 public:
  byte_reader() = default;
  explicit byte_reader(std::span<const std::uint8_t> in) : rest_(in) {}

  [[nodiscard]] std::size_t remaining() const { return rest_.size(); }
  [[nodiscard]] bool empty() const { return rest_.empty(); }
  // rest: the unread bytes, still borrowed from the caller's buffer.
  [[nodiscard]] std::span<const std::uint8_t> rest() const { return rest_; }

  [[nodiscard]] bool read_u8(std::uint8_t& out) { return read_be(1, out); }
  [[nodiscard]] bool read_u16(std::uint16_t& out) { return read_be(2, out); }
  [[nodiscard]] bool read_u24(std::uint32_t& out) { return read_be(3, out); }
  [[nodiscard]] bool read_u32(std::uint32_t& out) { return read_be(4, out); }

  // peek_*: like read_* but the cursor does not move.
  [[nodiscard]] bool peek_u8(std::uint8_t& out) const {
    byte_reader copy = *this;
    return copy.read_u8(out);
  }
  [[nodiscard]] bool peek_u16(std::uint16_t& out) const {
    byte_reader copy = *this;
    return copy.read_u16(out);
  }

  // read_bytes: the next `len` bytes as a borrowed span.
  [[nodiscard]] bool read_bytes(std::size_t len, std::span<const std::uint8_t>& out) {
    if (len > rest_.size()) {
      return false;
    }
    out = rest_.first(len);
    rest_ = rest_.subspan(len);
    return true;
  }

  // read_sub: the next `len` bytes as a reader of their own (a length-delimited structure).
  [[nodiscard]] bool read_sub(std::size_t len, byte_reader& out) {
    std::span<const std::uint8_t> bytes;
    if (!read_bytes(len, bytes)) {
      return false;
    }
    out = byte_reader(bytes);
    return true;
  }

  [[nodiscard]] bool skip(std::size_t len) {
    std::span<const std::uint8_t> ignored;
    return read_bytes(len, ignored);
  }

  // read_uN_prefixed: a vector with an N-byte big-endian length prefix (RFC 8446 section 3.4),
  // returned as a reader over exactly its body. Fails, consuming nothing, when the body is cut.
  [[nodiscard]] bool read_u8_prefixed(byte_reader& out) { return read_prefixed(1, out); }
  [[nodiscard]] bool read_u16_prefixed(byte_reader& out) { return read_prefixed(2, out); }
  [[nodiscard]] bool read_u24_prefixed(byte_reader& out) { return read_prefixed(3, out); }

  // starts_with: whether the unread bytes begin with `prefix` (prefix may be longer than rest).
  [[nodiscard]] bool starts_with(std::span<const std::uint8_t> prefix) const {
    if (prefix.size() > rest_.size()) {
      return false;
    }
    byte_reader copy = *this;
    for (std::uint8_t want : prefix) {
      std::uint8_t got = 0;
      if (!copy.read_u8(got) || got != want) {
        return false;
      }
    }
    return true;
  }

 private:
  template <typename T>
  [[nodiscard]] bool read_be(std::size_t width, T& out) {
    if (width > rest_.size()) {
      return false;
    }
    T value = 0;
    for (std::uint8_t b : rest_.first(width)) {
      value = static_cast<T>((value << 8U) | b);
    }
    rest_ = rest_.subspan(width);
    out = value;
    return true;
  }

  [[nodiscard]] bool read_prefixed(std::size_t width, byte_reader& out) {
    byte_reader copy = *this;
    std::uint32_t len = 0;
    if (!copy.read_be(width, len) || !copy.read_sub(len, out)) {
      return false;
    }
    *this = copy;
    return true;
  }

  std::span<const std::uint8_t> rest_;
};

}  // namespace linesman::tls
