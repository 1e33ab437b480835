#include "tls/proxy_header.hpp"

#include "tls/hex.hpp"

#include <algorithm>

namespace linesman::tls {

namespace {

constexpr std::string_view kV1Prefix = "PROXY ";
constexpr std::size_t kInetBlock = 12;   // 4 + 4 + 2 + 2
constexpr std::size_t kInet6Block = 36;  // 16 + 16 + 2 + 2
constexpr std::size_t kUnixBlock = 216;  // 108 + 108
constexpr std::size_t kUnixPathLen = 108;
constexpr std::size_t kTlvHeaderLen = 3;  // type u8 + length u16
constexpr std::size_t kCrc32cLen = 4;
constexpr std::size_t kIpTextMax = 39;  // "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

// ---- text helpers over byte_reader -------------------------------------------------------------

bool is_digit(std::uint8_t c) { return c >= '0' && c <= '9'; }

int hex_value(std::uint8_t c) {
  if (c >= '0' && c <= '9') {
    return c - '0';
  }
  if (c >= 'a' && c <= 'f') {
    return c - 'a' + 10;
  }
  if (c >= 'A' && c <= 'F') {
    return c - 'A' + 10;
  }
  return -1;
}

// prefix_match: 1 when `in` starts with `text`, 0 when `in` is a proper prefix of it, -1 otherwise.
int prefix_match(std::span<const std::uint8_t> in, std::span<const std::uint8_t> text) {
  byte_reader r(in);
  for (std::uint8_t want : text) {
    std::uint8_t got = 0;
    if (!r.read_u8(got)) {
      return 0;
    }
    if (got != want) {
      return -1;
    }
  }
  return 1;
}

// as_bytes: the characters of a string literal as bytes (a view, no copy).
std::span<const std::uint8_t> as_bytes(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// read_token: bytes up to the next space (not consumed) or the end of `r`.
std::span<const std::uint8_t> read_token(byte_reader& r) {
  byte_reader scan = r;
  std::size_t n = 0;
  std::uint8_t c = 0;
  while (scan.read_u8(c) && c != ' ') {
    ++n;
  }
  std::span<const std::uint8_t> token;
  return r.read_bytes(n, token) ? token : std::span<const std::uint8_t>();
}

bool token_is(std::span<const std::uint8_t> token, std::string_view text) {
  return token.size() == text.size() && prefix_match(token, as_bytes(text)) == 1;
}

// parse_port: 1-5 decimal digits, at most 65535, no leading zero (the spec's "0" excepted).
bool parse_port(std::span<const std::uint8_t> token, std::uint16_t& out) {
  byte_reader r(token);
  std::uint32_t value = 0;
  std::uint8_t c = 0;
  std::size_t digits = 0;
  std::uint8_t first = 0;
  if (!r.peek_u8(first) || (first == '0' && token.size() > 1) || token.size() > 5) {
    return false;
  }
  while (r.read_u8(c)) {
    if (!is_digit(c)) {
      return false;
    }
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    ++digits;
  }
  if (digits == 0 || value > 65535) {
    return false;
  }
  out = static_cast<std::uint16_t>(value);
  return true;
}

// parse_ipv4_into: dotted decimal, four parts of 1-3 digits without leading zeros, each <= 255,
// consuming exactly `r`'s bytes. Writes 4 bytes to `out` from `pos`.
bool parse_ipv4_into(byte_reader& r, std::array<std::uint8_t, 16>& out, std::size_t pos) {
  for (std::size_t part = 0; part < 4; ++part) {
    if (part > 0) {
      std::uint8_t dot = 0;
      if (!r.read_u8(dot) || dot != '.') {
        return false;
      }
    }
    std::uint32_t value = 0;
    std::size_t digits = 0;
    std::uint8_t first = 0;
    std::uint8_t c = 0;
    if (!r.peek_u8(first)) {
      return false;
    }
    while (r.peek_u8(c) && is_digit(c) && digits < 4) {
      (void)r.skip(1);
      value = value * 10 + static_cast<std::uint32_t>(c - '0');
      ++digits;
    }
    if (digits == 0 || digits > 3 || value > 255 || (first == '0' && digits > 1)) {
      return false;
    }
    out.at(pos + part) = static_cast<std::uint8_t>(value);
  }
  return true;
}

bool parse_ipv4(std::span<const std::uint8_t> token, proxy_endpoint& out) {
  byte_reader r(token);
  if (!parse_ipv4_into(r, out.addr, 0) || !r.empty()) {
    return false;
  }
  out.addr_len = 4;
  return true;
}

// parse_ipv6: RFC 4291 section 2.2 text: up to eight 1-4 digit hex groups separated by ':', one
// "::" for a run of zero groups, optionally ending in an embedded dotted IPv4 address.
bool parse_ipv6(std::span<const std::uint8_t> token, proxy_endpoint& out) {
  if (token.empty() || token.size() > 45) {
    return false;
  }
  std::array<std::uint8_t, 16> bytes{};
  std::size_t filled = 0;  // bytes written so far
  std::size_t gap = 0;     // where "::" sits, when has_gap
  byte_reader r(token);
  std::uint8_t c = 0;
  bool has_gap = false;
  byte_reader lead = r;
  std::uint8_t c0 = 0;
  std::uint8_t c1 = 0;
  if (lead.read_u8(c0) && c0 == ':') {
    if (!lead.read_u8(c1) || c1 != ':') {
      return false;  // a single leading ':'
    }
    gap = 0;
    has_gap = true;
    r = lead;
    if (r.empty()) {
      out.addr = bytes;
      out.addr_len = 16;
      return true;  // "::"
    }
  }
  while (!r.empty()) {
    if (filled >= 16) {
      return false;
    }
    // An embedded IPv4 address: digits followed by '.' before any ':'.
    byte_reader look = r;
    bool dotted = false;
    while (look.read_u8(c) && c != ':') {
      if (c == '.') {
        dotted = true;
        break;
      }
    }
    if (dotted) {
      if (filled > 12 || !parse_ipv4_into(r, bytes, filled) || !r.empty()) {
        return false;
      }
      filled += 4;
      break;
    }
    std::uint32_t group = 0;
    std::size_t digits = 0;
    while (r.peek_u8(c) && hex_value(c) >= 0) {
      (void)r.skip(1);
      group = (group << 4U) | static_cast<std::uint32_t>(hex_value(c));
      if (++digits > 4) {
        return false;
      }
    }
    if (digits == 0) {
      return false;
    }
    bytes.at(filled) = static_cast<std::uint8_t>(group >> 8U);
    bytes.at(filled + 1) = static_cast<std::uint8_t>(group & 0xffU);
    filled += 2;
    if (r.empty()) {
      break;
    }
    if (!r.read_u8(c) || c != ':') {
      return false;
    }
    if (r.peek_u8(c) && c == ':') {
      if (has_gap) {
        return false;  // a second "::"
      }
      (void)r.skip(1);
      gap = filled;
      has_gap = true;
      if (r.empty()) {
        break;  // a trailing "::"
      }
    } else if (r.empty()) {
      return false;  // a single trailing ':'
    }
  }
  if (!has_gap) {
    if (filled != 16) {
      return false;
    }
  } else {
    if (filled >= 16) {
      return false;  // "::" must stand for at least one group
    }
    // Move the groups after the gap to the end.
    const std::size_t tail = filled - gap;
    std::array<std::uint8_t, 16> moved{};
    std::copy_n(bytes.begin(), static_cast<std::ptrdiff_t>(gap), moved.begin());
    std::copy_n(bytes.begin() + static_cast<std::ptrdiff_t>(gap), static_cast<std::ptrdiff_t>(tail),
                moved.begin() + static_cast<std::ptrdiff_t>(16 - tail));
    bytes = moved;
  }
  out.addr = bytes;
  out.addr_len = 16;
  return true;
}

// ---- CRC-32C -----------------------------------------------------------------------------------

std::uint32_t crc32c_step(std::uint32_t crc, std::uint8_t byte) {
  crc ^= byte;
  for (int bit = 0; bit < 8; ++bit) {
    crc = (crc & 1U) != 0 ? (crc >> 1U) ^ 0x82f63b78U : crc >> 1U;
  }
  return crc;
}

// crc32c_zeroing: CRC-32C of `bytes` with the 4 bytes at `zero_at` read as zeros.
std::uint32_t crc32c_zeroing(std::span<const std::uint8_t> bytes, std::size_t zero_at) {
  std::uint32_t crc = 0xffffffffU;
  byte_reader r(bytes);
  std::uint8_t b = 0;
  for (std::size_t i = 0; r.read_u8(b); ++i) {
    crc = crc32c_step(crc, (i >= zero_at && i < zero_at + kCrc32cLen) ? std::uint8_t{0} : b);
  }
  return crc ^ 0xffffffffU;
}

// ---- version 1 ---------------------------------------------------------------------------------

// parse_v1: the text header.
//
//   "PROXY" SP ( "TCP4" | "TCP6" ) SP src SP dst SP sport SP dport CRLF      (at most 107 bytes)
//   "PROXY" SP "UNKNOWN" [ anything ] CRLF
proxy_status parse_v1(std::span<const std::uint8_t> in, proxy_header& out) {
  // Find CRLF within the first 107 bytes; the line may not hold a lone CR or LF.
  byte_reader scan(in);
  std::size_t line_len = 0;
  std::uint8_t c = 0;
  bool found = false;
  while (line_len + 2 <= kProxyV1MaxLen && scan.read_u8(c)) {
    if (c == '\r') {
      std::uint8_t lf = 0;
      if (!scan.read_u8(lf)) {
        return proxy_status::incomplete;
      }
      if (lf != '\n') {
        return proxy_status::malformed;
      }
      found = true;
      break;
    }
    if (c == '\n' || c == 0) {
      return proxy_status::malformed;
    }
    ++line_len;
  }
  if (!found) {
    return line_len + 2 > kProxyV1MaxLen ? proxy_status::malformed : proxy_status::incomplete;
  }
  byte_reader line_reader(in);
  std::span<const std::uint8_t> line_bytes;
  if (!line_reader.read_bytes(line_len, line_bytes)) {
    return proxy_status::malformed;
  }
  byte_reader line(line_bytes);
  if (!line.skip(kV1Prefix.size())) {
    return proxy_status::malformed;
  }
  out.version = proxy_version::v1;
  out.command = proxy_command::proxy;
  out.header_len = line_len + 2;
  const std::span<const std::uint8_t> proto = read_token(line);
  if (token_is(proto, "UNKNOWN")) {
    out.family = proxy_family::unspec;
    out.transport = proxy_transport::unspec;
    return proxy_status::complete;  // the rest of the line is to be ignored (spec 2.1)
  }
  const bool v4 = token_is(proto, "TCP4");
  if (!v4 && !token_is(proto, "TCP6")) {
    return proxy_status::malformed;
  }
  out.family = v4 ? proxy_family::inet : proxy_family::inet6;
  out.transport = proxy_transport::stream;
  std::array<std::span<const std::uint8_t>, 4> fields;
  for (auto& field : fields) {
    std::uint8_t sp = 0;
    if (!line.read_u8(sp) || sp != ' ') {
      return proxy_status::malformed;
    }
    field = read_token(line);
    if (field.empty() || field.size() > kIpTextMax + 6) {
      return proxy_status::malformed;
    }
  }
  const auto parse_ip = v4 ? parse_ipv4 : parse_ipv6;
  if (!line.empty() || !parse_ip(fields[0], out.source) || !parse_ip(fields[1], out.destination) ||
      !parse_port(fields[2], out.source.port) || !parse_port(fields[3], out.destination.port)) {
    return proxy_status::malformed;
  }
  return proxy_status::complete;
}

// ---- version 2 ---------------------------------------------------------------------------------

bool parse_ssl_tlv(std::span<const std::uint8_t> value, proxy_ssl_info& out) {
  byte_reader r(value);
  if (!r.read_u8(out.client) || !r.read_u32(out.verify)) {
    return false;
  }
  out.present = true;
  proxy_tlv sub;
  while (!r.empty()) {
    if (!next_proxy_tlv(r, sub)) {
      return false;
    }
    switch (sub.type) {
      case kPp2SubtypeSslVersion:
        out.version = sub.value;
        break;
      case kPp2SubtypeSslCn:
        out.cn = sub.value;
        break;
      case kPp2SubtypeSslCipher:
        out.cipher = sub.value;
        break;
      case kPp2SubtypeSslSigAlg:
        out.sig_alg = sub.value;
        break;
      case kPp2SubtypeSslKeyAlg:
        out.key_alg = sub.value;
        break;
      default:
        break;
    }
  }
  return true;
}

// parse_v2: the binary header.
//
//   0                  12        13        14       16
//   +------------------+---------+---------+--------+--------------------------------------+
//   | signature (12)   | ver|cmd | fam|prt | len    | addresses, then TLVs (len bytes)      |
//   +------------------+---------+---------+--------+--------------------------------------+
//   ver 2; cmd 0 LOCAL, 1 PROXY; fam 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX; prt 0 UNSPEC, 1 STREAM,
//   2 DGRAM. INET: | src 4 | dst 4 | sport 2 | dport 2 |; INET6: 16/16/2/2; UNIX: 108/108.
//   TLV: | type u8 | length u16 | value |
proxy_status parse_v2(std::span<const std::uint8_t> in, proxy_header& out) {
  byte_reader r(in);
  std::uint8_t ver_cmd = 0;
  std::uint8_t fam = 0;
  std::uint16_t len = 0;
  if (!r.skip(kProxyV2Signature.size())) {
    return proxy_status::incomplete;
  }
  if (r.read_u8(ver_cmd) && ((ver_cmd >> 4U) != 2 || (ver_cmd & 0x0fU) > 1)) {
    return proxy_status::malformed;
  }
  if (r.read_u8(fam) && ((fam >> 4U) > 3 || (fam & 0x0fU) > 2)) {
    return proxy_status::malformed;
  }
  byte_reader body;
  if (!r.read_u16(len) || !r.read_sub(len, body)) {
    return proxy_status::incomplete;
  }
  out.version = proxy_version::v2;
  out.command = (ver_cmd & 0x0fU) == 0 ? proxy_command::local : proxy_command::proxy;
  out.family = static_cast<proxy_family>(fam >> 4U);
  out.transport = static_cast<proxy_transport>(fam & 0x0fU);
  out.header_len = kProxyV2HeaderLen + len;
  switch (out.family) {
    case proxy_family::inet:
    case proxy_family::inet6: {
      const std::size_t addr_len = out.family == proxy_family::inet ? 4 : 16;
      std::span<const std::uint8_t> src;
      std::span<const std::uint8_t> dst;
      if (!body.read_bytes(addr_len, src) || !body.read_bytes(addr_len, dst) ||
          !body.read_u16(out.source.port) || !body.read_u16(out.destination.port)) {
        return proxy_status::malformed;
      }
      std::ranges::copy(src, out.source.addr.begin());
      std::ranges::copy(dst, out.destination.addr.begin());
      out.source.addr_len = static_cast<std::uint8_t>(addr_len);
      out.destination.addr_len = static_cast<std::uint8_t>(addr_len);
      break;
    }
    case proxy_family::unix_socket:
      if (!body.read_bytes(kUnixPathLen, out.unix_source) ||
          !body.read_bytes(kUnixPathLen, out.unix_destination)) {
        return proxy_status::malformed;
      }
      break;
    case proxy_family::unspec:
      break;  // no address block; anything left is TLVs
  }
  static_assert(kInetBlock == 12 && kInet6Block == 36 && kUnixBlock == 216);
  out.tlvs = body.rest();
  std::size_t crc_at = 0;
  proxy_tlv tlv;
  while (!body.empty()) {
    const std::size_t value_at = out.header_len - body.remaining() + kTlvHeaderLen;
    if (!next_proxy_tlv(body, tlv)) {
      return proxy_status::malformed;
    }
    switch (tlv.type) {
      case kPp2TypeAlpn:
        if (out.alpn.empty()) {
          out.alpn = tlv.value;
        }
        break;
      case kPp2TypeAuthority:
        if (out.authority.empty()) {
          out.authority = tlv.value;
        }
        break;
      case kPp2TypeCrc32c:
        if (tlv.value.size() != kCrc32cLen || out.has_crc32c) {
          return proxy_status::malformed;
        }
        out.has_crc32c = true;
        crc_at = value_at;
        break;
      case kPp2TypeUniqueId:
        if (tlv.value.size() > kProxyV2MaxUniqueId) {
          return proxy_status::malformed;
        }
        if (out.unique_id.empty()) {
          out.unique_id = tlv.value;
        }
        break;
      case kPp2TypeSsl:
        if (out.ssl.present || !parse_ssl_tlv(tlv.value, out.ssl)) {
          return proxy_status::malformed;
        }
        break;
      case kPp2TypeNetns:
        if (out.netns.empty()) {
          out.netns = tlv.value;
        }
        break;
      default:
        break;  // NOOP and types for others to interpret
    }
  }
  if (out.has_crc32c) {
    byte_reader whole(in);
    std::span<const std::uint8_t> header;
    byte_reader at_crc(in);
    std::uint32_t carried = 0;
    if (!whole.read_bytes(out.header_len, header) || !at_crc.skip(crc_at) ||
        !at_crc.read_u32(carried)) {
      return proxy_status::malformed;
    }
    out.crc32c_ok = crc32c_zeroing(header, crc_at) == carried;
  }
  return proxy_status::complete;
}

// ---- writing -----------------------------------------------------------------------------------

// byte_writer: the writing twin of byte_reader, private to the header writers. Every put checks
// room first; after the first failure every put fails, so a writer checks ok() once at the end.
class byte_writer {
 public:
  explicit byte_writer(std::span<std::uint8_t> out) : out_(out) {}

  void put_u8(std::uint8_t v) {
    if (!ok_ || pos_ >= out_.size()) {
      ok_ = false;
      return;
    }
    out_[pos_++] = v;
  }
  void put_u16(std::uint16_t v) {
    put_u8(static_cast<std::uint8_t>(v >> 8U));
    put_u8(static_cast<std::uint8_t>(v & 0xffU));
  }
  void put_u32(std::uint32_t v) {
    put_u16(static_cast<std::uint16_t>(v >> 16U));
    put_u16(static_cast<std::uint16_t>(v & 0xffffU));
  }
  void put_bytes(std::span<const std::uint8_t> bytes) {
    for (std::uint8_t b : bytes) {
      put_u8(b);
    }
  }
  void put_text(std::string_view s) {
    for (char ch : s) {
      put_u8(static_cast<std::uint8_t>(ch));
    }
  }
  // patch_u16 / patch_u32: overwrite bytes already written at `at`.
  void patch_u16(std::size_t at, std::uint16_t v) {
    if (ok_ && at + 2 <= pos_) {
      out_[at] = static_cast<std::uint8_t>(v >> 8U);
      out_[at + 1] = static_cast<std::uint8_t>(v & 0xffU);
    }
  }
  void patch_u32(std::size_t at, std::uint32_t v) {
    patch_u16(at, static_cast<std::uint16_t>(v >> 16U));
    patch_u16(at + 2, static_cast<std::uint16_t>(v & 0xffffU));
  }

  [[nodiscard]] bool ok() const { return ok_; }
  [[nodiscard]] std::size_t written() const { return pos_; }
  [[nodiscard]] std::span<const std::uint8_t> data() const { return out_.first(pos_); }

 private:
  std::span<std::uint8_t> out_;
  std::size_t pos_ = 0;
  bool ok_ = true;
};

// ip_text: RFC 5952 text of a 4- or 16-byte address into `out`; returns the length (0 on error).
std::size_t ip_text(std::span<const std::uint8_t> addr, std::span<char> out) {
  std::array<char, 48> buf{};
  std::size_t n = 0;
  const auto put = [&](char ch) {
    if (n < buf.size()) {
      buf.at(n++) = ch;
    }
  };
  const auto put_dec = [&](unsigned v) {
    if (v >= 100) {
      put(static_cast<char>('0' + v / 100));
    }
    if (v >= 10) {
      put(static_cast<char>('0' + (v / 10) % 10));
    }
    put(static_cast<char>('0' + v % 10));
  };
  byte_reader r(addr);
  if (addr.size() == 4) {
    std::uint8_t b = 0;
    for (int i = 0; r.read_u8(b); ++i) {
      if (i > 0) {
        put('.');
      }
      put_dec(b);
    }
  } else if (addr.size() == 16) {
    std::array<std::uint16_t, 8> groups{};
    for (auto& g : groups) {
      (void)r.read_u16(g);
    }
    // The longest run of two or more zero groups becomes "::" (the first, on a tie).
    std::size_t best_at = 8;
    std::size_t best_len = 1;
    for (std::size_t i = 0; i < 8;) {
      std::size_t j = i;
      while (j < 8 && groups.at(j) == 0) {
        ++j;
      }
      if (j - i > best_len) {
        best_at = i;
        best_len = j - i;
      }
      i = j == i ? i + 1 : j;
    }
    for (std::size_t i = 0; i < 8; ++i) {
      if (i == best_at) {
        put(':');
        put(':');
        i += best_len - 1;
        continue;
      }
      if (i > 0 && i != best_at + best_len) {
        put(':');
      }
      const std::uint16_t g = groups.at(i);
      bool started = false;
      for (int shift = 12; shift >= 0; shift -= 4) {
        const unsigned nibble = (static_cast<unsigned>(g) >> static_cast<unsigned>(shift)) & 0xfU;
        if (nibble != 0 || started || shift == 0) {
          put(hex_digit(nibble));
          started = true;
        }
      }
    }
  } else {
    return 0;
  }
  if (n > out.size()) {
    return 0;
  }
  std::copy_n(buf.begin(), static_cast<std::ptrdiff_t>(n), out.begin());
  return n;
}

void put_port(byte_writer& w, std::uint16_t port) {
  std::array<char, 5> digits{};
  std::size_t n = 0;
  unsigned v = port;
  do {
    digits.at(n++) = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) {
    w.put_u8(static_cast<std::uint8_t>(digits.at(--n)));
  }
}

bool same_family(const proxy_endpoint& a, const proxy_endpoint& b) {
  return a.addr_len == b.addr_len && (a.addr_len == 0 || a.addr_len == 4 || a.addr_len == 16);
}

}  // namespace

bool next_proxy_tlv(byte_reader& block, proxy_tlv& out) {
  byte_reader copy = block;
  std::uint8_t type = 0;
  std::uint16_t len = 0;
  std::span<const std::uint8_t> value;
  if (!copy.read_u8(type) || !copy.read_u16(len) || !copy.read_bytes(len, value)) {
    return false;
  }
  block = copy;
  out = proxy_tlv{type, value};
  return true;
}

proxy_status parse_proxy_header(std::span<const std::uint8_t> in, proxy_header& out) {
  out = proxy_header{};
  if (in.empty()) {
    return proxy_status::incomplete;
  }
  const int v2 = prefix_match(in, kProxyV2Signature);
  if (v2 == 1) {
    return parse_v2(in, out);
  }
  const int v1 = prefix_match(in, as_bytes(kV1Prefix));
  if (v1 == 1) {
    return parse_v1(in, out);
  }
  return (v1 == 0 || v2 == 0) ? proxy_status::incomplete : proxy_status::not_proxy;
}

std::size_t write_proxy_v1(const proxy_endpoint& source, const proxy_endpoint& destination,
                           std::span<std::uint8_t> out) {
  if (!same_family(source, destination)) {
    return 0;
  }
  byte_writer w(out);
  w.put_text(kV1Prefix);
  if (source.addr_len == 0) {
    w.put_text("UNKNOWN\r\n");
    return w.ok() ? w.written() : 0;
  }
  w.put_text(source.addr_len == 4 ? "TCP4 " : "TCP6 ");
  std::array<char, 48> text{};
  for (const proxy_endpoint* ep : {&source, &destination}) {
    const std::size_t n = ip_text(ep->address(), text);
    w.put_text(std::string_view(text.data(), n));
    w.put_u8(' ');
  }
  put_port(w, source.port);
  w.put_u8(' ');
  put_port(w, destination.port);
  w.put_text("\r\n");
  return w.ok() && w.written() <= kProxyV1MaxLen ? w.written() : 0;
}

std::size_t write_proxy_v2(const proxy_endpoint& source, const proxy_endpoint& destination,
                           const proxy_v2_tlvs& tlvs, std::span<std::uint8_t> out) {
  if (!same_family(source, destination) || tlvs.unique_id.size() > kProxyV2MaxUniqueId ||
      tlvs.authority.size() > 255) {
    return 0;  // 255: an SNI host name is at most 255 bytes (RFC 6066 section 3)
  }
  byte_writer w(out);
  w.put_bytes(kProxyV2Signature);
  const bool local = source.addr_len == 0;
  w.put_u8(local ? 0x20 : 0x21);
  w.put_u8(local ? 0x00 : source.addr_len == 4 ? 0x11 : 0x21);
  const std::size_t len_at = w.written();
  w.put_u16(0);
  if (!local) {
    w.put_bytes(source.address());
    w.put_bytes(destination.address());
    w.put_u16(source.port);
    w.put_u16(destination.port);
  }
  if (!tlvs.authority.empty()) {
    w.put_u8(kPp2TypeAuthority);
    w.put_u16(static_cast<std::uint16_t>(tlvs.authority.size()));
    w.put_text(tlvs.authority);
  }
  if (!tlvs.unique_id.empty()) {
    w.put_u8(kPp2TypeUniqueId);
    w.put_u16(static_cast<std::uint16_t>(tlvs.unique_id.size()));
    w.put_bytes(tlvs.unique_id);
  }
  std::size_t crc_at = 0;
  if (tlvs.crc32c) {
    w.put_u8(kPp2TypeCrc32c);
    w.put_u16(kCrc32cLen);
    crc_at = w.written();
    w.put_u32(0);
  }
  if (!w.ok()) {
    return 0;
  }
  w.patch_u16(len_at, static_cast<std::uint16_t>(w.written() - kProxyV2HeaderLen));
  if (tlvs.crc32c) {
    w.patch_u32(crc_at, crc32c(w.data()));
  }
  return w.written();
}

std::size_t format_proxy_endpoint(const proxy_endpoint& ep, std::span<char> out) {
  std::array<char, 64> buf{};
  std::size_t n = 0;
  const bool v6 = ep.addr_len == 16;
  if (v6) {
    buf.at(n++) = '[';
  }
  const std::size_t ip = ip_text(ep.address(), std::span<char>(buf).subspan(n));
  if (ip == 0) {
    return 0;
  }
  n += ip;
  if (v6) {
    buf.at(n++) = ']';
  }
  buf.at(n++) = ':';
  std::array<char, 5> digits{};
  std::size_t d = 0;
  unsigned v = ep.port;
  do {
    digits.at(d++) = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (d > 0) {
    buf.at(n++) = digits.at(--d);
  }
  if (n > out.size()) {
    return 0;
  }
  std::copy_n(buf.begin(), static_cast<std::ptrdiff_t>(n), out.begin());
  return n;
}

std::uint32_t crc32c(std::span<const std::uint8_t> bytes) {
  return crc32c_zeroing(bytes, bytes.size());
}

const char* proxy_status_name(proxy_status s) {
  switch (s) {
    case proxy_status::complete:
      return "complete";
    case proxy_status::incomplete:
      return "incomplete";
    case proxy_status::malformed:
      return "malformed";
    case proxy_status::not_proxy:
      return "not_proxy";
  }
  return "unknown";
}

}  // namespace linesman::tls
