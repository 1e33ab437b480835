#include "capture/hello_rewrite.hpp"

#include "tls/byte_reader.hpp"
#include "tls/client_hello.hpp"
#include "tls/record.hpp"

#include <algorithm>
#include <array>

namespace linesman::capture {

namespace {

constexpr std::uint16_t kExtPadding = 0x0015;  // RFC 7685
constexpr std::size_t kMaxName = 255;

void put16(std::vector<std::uint8_t>& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
  b.push_back(static_cast<std::uint8_t>(v & 0xff));
}
void put24(std::vector<std::uint8_t>& b, std::size_t v) {
  b.push_back(static_cast<std::uint8_t>((v >> 16) & 0xff));
  put16(b, v & 0xffff);
}
void append(std::vector<std::uint8_t>& b, std::span<const std::uint8_t> s) {
  b.insert(b.end(), s.begin(), s.end());
}

// sni_extension: a complete server_name extension (RFC 6066 section 3) for `name`:
//
//   | type 0x0000 (2) | ext length (2) | list length (2) | name_type 0 (1) | name length (2) | name
//   |
void sni_extension(std::vector<std::uint8_t>& b, std::string_view name) {
  put16(b, tls::kExtServerName);
  put16(b, name.size() + 5);
  put16(b, name.size() + 3);
  b.push_back(0);  // host_name
  put16(b, name.size());
  b.insert(b.end(), name.begin(), name.end());
}

}  // namespace

// The ClientHello body (RFC 8446 section 4.1.2) walked here:
//
//   | legacy_version (2) | random (32) | session_id <0..32> (u8 len) |
//   | cipher_suites <2..2^16-2> (u16 len) | compression <1..2^8-1> (u8 len) |
//   | extensions <8..2^16-1> (u16 len): { type (2) | length (2) | body } ... |
bool rewrite_sni(std::span<const std::uint8_t> flight, std::string_view name,
                 std::vector<std::uint8_t>& out, std::string& error) {
  if (name.size() > kMaxName) {
    error = "--sni: a host name is at most 255 bytes";
    return false;
  }
  std::vector<std::uint8_t> scratch(tls::kScratchLen);
  tls::client_hello hello;
  tls::hello_status st = tls::parse_client_hello(flight, scratch, hello);
  if (st != tls::hello_status::complete) {
    error = std::string("--sni: the first flight holds no complete ClientHello (") +
            std::string(tls::hello_status_name(st)) + ")";
    return false;
  }
  if (hello.format != tls::hello_format::tls) {
    error = "--sni: an SSLv2-format hello has no extensions to rewrite";
    return false;
  }
  if (hello.tls_offset > flight.size() || hello.wire_len > flight.size() - hello.tls_offset) {
    error = "--sni: inconsistent hello bounds";
    return false;
  }
  std::span<const std::uint8_t> prefix = flight.first(hello.tls_offset);
  std::span<const std::uint8_t> tls_part = flight.subspan(hello.tls_offset, hello.wire_len);
  std::span<const std::uint8_t> suffix = flight.subspan(hello.tls_offset + hello.wire_len);

  tls::handshake_message msg;
  std::vector<std::uint8_t> scratch2(tls::kScratchLen + 4);
  if (tls::read_handshake_message(tls_part, scratch2, tls::kHandshakeClientHello, scratch2.size(),
                                  msg) != tls::hello_status::complete) {
    error = "--sni: cannot reassemble the ClientHello message";
    return false;
  }

  tls::byte_reader r(msg.body);
  std::span<const std::uint8_t> fixed;  // legacy_version + random
  tls::byte_reader session;
  tls::byte_reader ciphers;
  tls::byte_reader compression;
  if (!r.read_bytes(34, fixed) || !r.read_u8_prefixed(session) || !r.read_u16_prefixed(ciphers) ||
      !r.read_u8_prefixed(compression)) {
    error = "--sni: malformed ClientHello";
    return false;
  }
  // Everything up to the extensions block is copied as is.
  std::span<const std::uint8_t> head = msg.body.first(msg.body.size() - r.remaining());
  tls::byte_reader exts;
  if (!r.empty() && (!r.read_u16_prefixed(exts) || !r.empty())) {
    error = "--sni: malformed extensions block";
    return false;
  }

  // New extensions block.
  std::vector<std::uint8_t> ext_block;
  bool replaced = false;  // a server_name extension was found (and rewritten or dropped)
  long padding_at = -1;   // offset of the padding extension's header in ext_block
  std::vector<std::uint8_t> rest;
  while (!exts.empty()) {
    std::uint16_t type = 0;
    tls::byte_reader body;
    if (!exts.read_u16(type) || !exts.read_u16_prefixed(body)) {
      error = "--sni: malformed extension";
      return false;
    }
    if (type == tls::kExtServerName) {
      if (!replaced && !name.empty()) {
        sni_extension(rest, name);
      }
      replaced = true;
      continue;
    }
    if (type == kExtPadding) {
      padding_at = static_cast<long>(rest.size());
    }
    put16(rest, type);
    put16(rest, body.remaining());
    append(rest, body.rest());
  }
  if (!replaced && !name.empty()) {
    sni_extension(ext_block, name);
  }
  append(ext_block, rest);
  if (padding_at >= 0 && !replaced && !name.empty()) {
    padding_at += static_cast<long>(ext_block.size() - rest.size());
  }

  // Keep the hello's original size by resizing the padding extension, when there is one.
  auto body_len = [&] { return head.size() + (ext_block.empty() ? 0 : 2 + ext_block.size()); };
  if (padding_at >= 0) {
    auto at = static_cast<std::size_t>(padding_at);
    std::size_t pad_len = static_cast<std::size_t>(ext_block[at + 2]) << 8 | ext_block[at + 3];
    std::size_t now = body_len();
    std::size_t want = msg.body.size();
    std::size_t new_pad = pad_len;
    if (now > want) {
      new_pad = pad_len >= now - want ? pad_len - (now - want) : 0;
    } else if (now < want) {
      new_pad = pad_len + (want - now);
    }
    std::vector<std::uint8_t> resized(ext_block.begin(), ext_block.begin() + padding_at);
    put16(resized, kExtPadding);
    put16(resized, new_pad);
    resized.insert(resized.end(), new_pad, 0);
    resized.insert(resized.end(), ext_block.begin() + padding_at + 4 + static_cast<long>(pad_len),
                   ext_block.end());
    ext_block = std::move(resized);
  }
  if (ext_block.size() > 0xffff) {
    error = "--sni: the extensions block would exceed 65535 bytes";
    return false;
  }

  std::vector<std::uint8_t> body(head.begin(), head.end());
  if (!ext_block.empty() || hello.extensions_present) {
    put16(body, ext_block.size());
    append(body, ext_block);
  }
  std::vector<std::uint8_t> message;
  message.push_back(tls::kHandshakeClientHello);
  put24(message, body.size());
  append(message, body);

  std::vector<std::uint8_t> result(prefix.begin(), prefix.end());
  std::span<const std::uint8_t> m(message);
  while (!m.empty()) {
    std::size_t n = std::min(m.size(), tls::kMaxRecordPayload);
    result.push_back(tls::kContentHandshake);
    put16(result, msg.record_version);
    put16(result, n);
    append(result, m.first(n));
    m = m.subspan(n);
  }
  append(result, suffix);
  out = std::move(result);
  return true;
}

bool split_records(std::span<const std::uint8_t> flight, unsigned records, std::size_t first,
                   std::vector<std::uint8_t>& out, std::string& error) {
  std::vector<std::uint8_t> scratch(tls::kScratchLen);
  tls::client_hello hello;
  const tls::hello_status st = tls::parse_client_hello(flight, scratch, hello);
  if (st != tls::hello_status::complete || hello.format != tls::hello_format::tls) {
    error = std::string("the first flight holds no complete TLS ClientHello (") +
            std::string(tls::hello_status_name(st)) + ")";
    return false;
  }
  if (hello.tls_offset > flight.size() || hello.wire_len > flight.size() - hello.tls_offset) {
    error = "inconsistent hello bounds";
    return false;
  }
  tls::handshake_message msg;
  std::vector<std::uint8_t> scratch2(tls::kScratchLen + 4);
  if (tls::read_handshake_message(flight.subspan(hello.tls_offset, hello.wire_len), scratch2,
                                  tls::kHandshakeClientHello, scratch2.size(),
                                  msg) != tls::hello_status::complete) {
    error = "cannot reassemble the ClientHello message";
    return false;
  }
  std::vector<std::uint8_t> message;
  message.push_back(tls::kHandshakeClientHello);
  put24(message, msg.body.size());
  append(message, msg.body);
  if (records == 0 || records > message.size() || (first != 0 && records < 2) ||
      first >= message.size() || (first != 0 && message.size() - first < records - 1)) {
    error = "records=" + std::to_string(records) +
            (first != 0 ? ",first=" + std::to_string(first) : "") +
            " does not fit a handshake message of " + std::to_string(message.size()) + " bytes";
    return false;
  }
  std::vector<std::size_t> sizes;
  if (first != 0) {
    sizes.push_back(first);
    for (const auto n : segment_sizes(message.size() - first, records - 1)) {
      sizes.push_back(n);
    }
  } else {
    sizes = segment_sizes(message.size(), records);
  }
  if (std::any_of(sizes.begin(), sizes.end(),
                  [](std::size_t n) { return n > tls::kMaxRecordPayload; })) {
    error = "records=" + std::to_string(records) + " would put more than 2^14 bytes in a record";
    return false;
  }
  std::vector<std::uint8_t> result(flight.begin(),
                                   flight.begin() + static_cast<long>(hello.tls_offset));
  std::span<const std::uint8_t> m(message);
  for (const auto n : sizes) {
    result.push_back(tls::kContentHandshake);
    put16(result, msg.record_version);
    put16(result, n);
    append(result, m.first(n));
    m = m.subspan(n);
  }
  append(result, flight.subspan(hello.tls_offset + hello.wire_len));
  out = std::move(result);
  return true;
}

std::vector<std::size_t> segment_sizes(std::size_t len, unsigned n) {
  std::vector<std::size_t> out;
  if (len == 0 || n == 0) {
    return out;
  }
  const std::size_t pieces = std::min<std::size_t>(n, len);
  for (std::size_t i = 0; i < pieces; ++i) {
    out.push_back(len / pieces + (i < len % pieces ? 1 : 0));
  }
  return out;
}

}  // namespace linesman::capture
