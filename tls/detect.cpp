// detect: first-bytes protocol detection (see detect.hpp).
//
// Each protocol has a matcher that looks at the start of the input and answers `no` (it cannot be
// this protocol, whatever follows), `partial` (the bytes are a prefix of this protocol's opening,
// or its summary is not final yet) or `yes` (it is this protocol and the summary is final: more
// bytes cannot change it). Matchers are tried in a fixed priority order per direction and the
// first one that does not say `no` decides: `yes` gives a complete detection, `partial` an
// incomplete one (its protocol and summary are the best guess so far). When every matcher says
// `no`, the bytes are `unknown`, complete once its summary cannot grow any more.
//
// Secrets: summaries only carry what is named below for each protocol - never passwords, AUTH
// arguments, header lines, or bytes past the first line. Unknown bytes show at most their first
// word (text) or first 8 bytes (binary), since an unknown protocol's secrets cannot be told apart.
#include "tls/detect.hpp"

#include "tls/byte_reader.hpp"
#include "tls/hex.hpp"
#include "tls/names.hpp"
#include "tls/proxy_header.hpp"

#include <algorithm>

namespace linesman::tls {

// ---- summary_text ------------------------------------------------------------------------------

namespace {

bool is_printable(std::uint8_t c) { return c >= 0x20 && c < 0x7f && c != '\\'; }

}  // namespace

void summary_text::append(std::string_view s) {
  for (char ch : s) {
    const auto c = static_cast<std::uint8_t>(ch);
    if (is_printable(c)) {
      if (len_ + 1 > kMaxSummary) {
        return;
      }
      buf_.at(len_++) = ch;
    } else {
      if (len_ + 4 > kMaxSummary) {
        return;  // never a cut escape: "\x4" would read as a different byte
      }
      buf_.at(len_++) = '\\';
      buf_.at(len_++) = 'x';
      buf_.at(len_++) = hex_digit(static_cast<unsigned>(c) >> 4U);
      buf_.at(len_++) = hex_digit(c);
    }
  }
}

void summary_text::append_escaped(std::span<const std::uint8_t> bytes) {
  byte_reader r(bytes);
  std::uint8_t c = 0;
  while (len_ < kMaxSummary && r.read_u8(c)) {
    const char ch = static_cast<char>(c);
    append(std::string_view(&ch, 1));
  }
}

namespace {

// ---- matching helpers --------------------------------------------------------------------------

enum class match : std::uint8_t { no, partial, yes };

using byte_view = std::span<const std::uint8_t>;

std::uint8_t lower(std::uint8_t c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<std::uint8_t>(c - 'A' + 'a') : c;
}

// literal: `yes` when `in` starts with `text`, `partial` when `in` is a proper prefix of it.
match literal(byte_view in, std::string_view text, bool ignore_case = false) {
  byte_reader r(in);
  for (char ch : text) {
    std::uint8_t got = 0;
    if (!r.read_u8(got)) {
      return match::partial;
    }
    const auto want = static_cast<std::uint8_t>(ch);
    if (ignore_case ? lower(got) != lower(want) : got != want) {
      return match::no;
    }
  }
  return match::yes;
}

bool equals(byte_view a, std::string_view text, bool ignore_case) {
  return a.size() == text.size() && literal(a, text, ignore_case) == match::yes;
}

// contains_word: whether `line` contains `word` (case-insensitive) anywhere.
bool contains(byte_view line, std::string_view word) {
  byte_reader r(line);
  while (r.remaining() >= word.size()) {
    if (literal(r.rest(), word, true) == match::yes) {
      return true;
    }
    (void)r.skip(1);
  }
  return false;
}

// kMaxLine: a first line longer than this is judged on what it has (its summary is cut anyway),
// so a peer that never sends a line end cannot keep a detection open forever.
constexpr std::size_t kMaxLine = 4096;

// line_view: the first line of `in` without its CRLF or LF; `ended` when the end was seen (or the
// line reached kMaxLine).
struct line_view {
  byte_view text;
  bool ended = false;
  bool cut = false;  // ended by kMaxLine, not by a line end
};

line_view first_line(byte_view in) {
  byte_reader scan(in);
  std::size_t n = 0;
  std::uint8_t c = 0;
  bool ended = false;
  while (n < kMaxLine && scan.read_u8(c)) {
    if (c == '\n') {
      ended = true;
      break;
    }
    ++n;
  }
  const bool cut = !ended && n == kMaxLine;
  ended = ended || cut;
  byte_reader r(in);
  byte_view text;
  (void)r.read_bytes(n, text);
  // Drop one CR before the LF.
  if (ended && !text.empty()) {
    byte_reader tail(text);
    std::uint8_t last = 0;
    if (tail.skip(text.size() - 1) && tail.read_u8(last) && last == '\r') {
      text = text.first(text.size() - 1);
    }
  }
  return {text, ended, cut};
}

// take: up to `n` leading bytes of `in`.
byte_view take(byte_view in, std::size_t n) { return in.first(std::min(n, in.size())); }

// append_field: `field` escaped, cut to `max` bytes with "..." when longer.
void append_field(summary_text& s, byte_view field, std::size_t max) {
  s.append_escaped(take(field, max));
  if (field.size() > max) {
    s.append("...");
  }
}

void append_number(summary_text& s, std::uint64_t v) {
  std::array<char, 20> digits{};
  std::size_t n = 0;
  do {
    digits.at(n++) = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < digits.size());
  std::array<char, 20> text{};
  for (std::size_t i = 0; i < n; ++i) {
    text.at(i) = digits.at(n - 1 - i);
  }
  s.append(std::string_view(text.data(), n));
}

// read_cstring: a NUL-terminated string (without the NUL); false when no NUL is in `r`.
bool read_cstring(byte_reader& r, byte_view& out) {
  byte_reader scan = r;
  std::size_t n = 0;
  std::uint8_t c = 1;
  while (scan.read_u8(c) && c != 0) {
    ++n;
  }
  if (c != 0) {
    return false;
  }
  return r.read_bytes(n, out) && r.skip(1);
}

struct result {
  match m = match::no;
  protocol proto = protocol::unknown;
  summary_text summary;
};

result make(match m, protocol p) {
  result r;
  r.m = m;
  r.proto = p;
  return r;
}

// ---- TLS ---------------------------------------------------------------------------------------

std::string_view handshake_type_name(std::uint8_t type) {
  switch (type) {
    case 0:
      return "HelloRequest";
    case 1:
      return "ClientHello";
    case 2:
      return "ServerHello";
    case 4:
      return "NewSessionTicket";
    case 11:
      return "Certificate";
    case 12:
      return "ServerKeyExchange";
    case 13:
      return "CertificateRequest";
    case 14:
      return "ServerHelloDone";
    default:
      return {};
  }
}

// match_tls: a TLS handshake or alert record header, or an SSLv2-format ClientHello.
//
//   | type 22|21 | 3 | minor 0..4 | length u16 (1..18432) | handshake type u8 ... |  alert: | level
//   | desc | SSLv2: | 1 len-hi (bit 7 set) | len-lo | msg_type 1 | version u16 | ...
result match_tls(byte_view in, direction dir) {
  byte_reader r(in);
  std::uint8_t type = 0;
  if (!r.read_u8(type)) {
    return make(match::no, protocol::tls);
  }
  if (type == 22 || type == 21) {
    std::uint8_t major = 0;
    std::uint8_t minor = 0;
    std::uint16_t len = 0;
    if (!r.read_u8(major)) {
      return make(match::partial, protocol::tls);
    }
    if (major != 3) {
      return make(match::no, protocol::tls);
    }
    if (!r.read_u8(minor)) {
      return make(match::partial, protocol::tls);
    }
    if (minor > 4) {
      return make(match::no, protocol::tls);
    }
    if (!r.read_u16(len)) {
      return make(match::partial, protocol::tls);
    }
    if (len == 0 || len > 16384 + 2048) {
      return make(match::no, protocol::tls);
    }
    result out = make(match::partial, protocol::tls);
    const code_name version = version_name(static_cast<std::uint16_t>(0x0300U | minor));
    if (type == 22) {
      std::uint8_t hs = 0;
      if (!r.read_u8(hs)) {
        out.summary.append("TLS handshake");
        return out;
      }
      out.m = match::yes;
      out.summary.append("TLS handshake ");
      const std::string_view name = handshake_type_name(hs);
      if (name.empty()) {
        out.summary.append("type ");
        append_number(out.summary, hs);
      } else {
        out.summary.append(name);
      }
      out.summary.append(", record version ");
      out.summary.append(version.view());
      return out;
    }
    std::uint8_t level = 0;
    std::uint8_t description = 0;
    out.summary.append("TLS alert");
    if (!r.read_u8(level) || !r.read_u8(description)) {
      return out;
    }
    out.m = match::yes;
    out.summary.clear();
    out.summary.append("TLS alert ");
    out.summary.append(alert_level_name(level).view());
    out.summary.append(" ");
    out.summary.append(alert_description_name(description).view());
    out.summary.append(" (");
    append_number(out.summary, description);
    out.summary.append(")");
    return out;
  }
  if ((type & 0x80U) != 0 && dir == direction::client_to_server) {
    // SSLv2 record header with a 2-byte length, then CLIENT-HELLO (1) and a version.
    std::uint8_t len_lo = 0;
    std::uint8_t msg = 0;
    std::uint16_t version = 0;
    if (!r.read_u8(len_lo)) {
      return make(match::partial, protocol::tls);
    }
    const auto len = static_cast<std::size_t>(((type & 0x7fU) << 8U) | len_lo);
    if (len < 9) {
      return make(match::no, protocol::tls);
    }
    if (!r.read_u8(msg)) {
      return make(match::partial, protocol::tls);
    }
    if (msg != 1) {
      return make(match::no, protocol::tls);
    }
    if (!r.read_u16(version)) {
      return make(match::partial, protocol::tls);
    }
    if (version != 0x0002 && (version < 0x0300 || version > 0x0304)) {
      return make(match::no, protocol::tls);
    }
    result out = make(match::yes, protocol::tls);
    out.summary.append("SSLv2-format ClientHello, version ");
    out.summary.append(version == 0x0002 ? std::string_view("SSL 2.0")
                                         : version_name(version).view());
    return out;
  }
  return make(match::no, protocol::tls);
}

// ---- PROXY protocol ----------------------------------------------------------------------------

void append_endpoint(summary_text& s, const proxy_endpoint& ep) {
  std::array<char, 64> text{};
  const std::size_t n = format_proxy_endpoint(ep, text);
  s.append(std::string_view(text.data(), n));
}

// match_proxy: a PROXY protocol v1 or v2 header (parse_proxy_header). Summary: version, family and
// addresses, and for v2 the authority (the client's SNI) when present.
result match_proxy(byte_view in) {
  proxy_header h;
  const proxy_status st = parse_proxy_header(in, h);
  std::uint8_t first = 0;
  const bool v2 = byte_reader(in).peek_u8(first) && first == '\r';
  result out = make(match::no, v2 ? protocol::proxy_v2 : protocol::proxy_v1);
  switch (st) {
    case proxy_status::not_proxy:
      return out;
    case proxy_status::incomplete:
      out.m = match::partial;
      out.summary.append(v2 ? "PROXY v2 header" : "PROXY v1 header");
      return out;
    case proxy_status::malformed:
      out.m = match::yes;
      out.summary.append(v2 ? "malformed PROXY v2 header" : "malformed PROXY v1 header");
      return out;
    case proxy_status::complete:
      break;
  }
  out.m = match::yes;
  out.proto = h.version == proxy_version::v2 ? protocol::proxy_v2 : protocol::proxy_v1;
  out.summary.append(h.version == proxy_version::v2 ? "PROXY v2 " : "PROXY v1 ");
  if (h.command == proxy_command::local) {
    out.summary.append("LOCAL");
    return out;
  }
  switch (h.family) {
    case proxy_family::unspec:
      out.summary.append("UNKNOWN");
      return out;
    case proxy_family::unix_socket:
      out.summary.append("UNIX");
      return out;
    case proxy_family::inet:
      out.summary.append("TCP4 ");
      break;
    case proxy_family::inet6:
      out.summary.append("TCP6 ");
      break;
  }
  if (h.transport == proxy_transport::dgram) {
    out.summary.clear();
    out.summary.append(h.family == proxy_family::inet ? "PROXY v2 UDP4 " : "PROXY v2 UDP6 ");
  }
  append_endpoint(out.summary, h.source);
  out.summary.append(" -> ");
  append_endpoint(out.summary, h.destination);
  if (!h.authority.empty()) {
    out.summary.append(" authority=");
    append_field(out.summary, h.authority, 64);
  }
  return out;
}

// ---- HTTP --------------------------------------------------------------------------------------

constexpr std::array<std::string_view, 9> kHttpMethods = {
    "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH", "CONNECT", "TRACE"};
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr std::size_t kMaxTargetShown = 64;

bool is_token_visible(std::uint8_t c) { return c > 0x20 && c < 0x7f; }

// http_version_ok: "HTTP/" DIGIT "." DIGIT.
bool http_version_ok(byte_view v) {
  byte_reader r(v);
  std::uint8_t major = 0;
  std::uint8_t dot = 0;
  std::uint8_t minor = 0;
  return v.size() == 8 && literal(v, "HTTP/") == match::yes && r.skip(5) && r.read_u8(major) &&
         r.read_u8(dot) && r.read_u8(minor) && major >= '0' && major <= '9' && dot == '.' &&
         minor >= '0' && minor <= '9';
}

// match_http_request: an HTTP/1 request line "METHOD SP target SP HTTP/x.y CRLF".
// Summary: method, target (query replaced by "?...", cut at 64 bytes), version. The query is
// dropped because tokens and keys often travel there.
result match_http_request(byte_view in) {
  std::string_view method;
  bool any_partial = false;
  for (std::string_view m : kHttpMethods) {
    const match lm = literal(in, m);
    if (lm == match::yes) {
      method = m;
      break;
    }
    any_partial = any_partial || lm == match::partial;
  }
  if (method.empty()) {
    return make(any_partial ? match::partial : match::no, protocol::http1);
  }
  byte_reader r(in);
  std::uint8_t sp = 0;
  (void)r.skip(method.size());
  if (!r.read_u8(sp)) {
    return make(match::partial, protocol::http1);
  }
  if (sp != ' ') {
    return make(match::no, protocol::http1);
  }
  const line_view line = first_line(r.rest());
  byte_reader lr(line.text);
  std::size_t target_len = 0;
  std::uint8_t c = 0;
  while (lr.peek_u8(c) && c != ' ') {
    if (!is_token_visible(c)) {
      return make(match::no, protocol::http1);
    }
    (void)lr.skip(1);
    ++target_len;
  }
  const byte_view target = line.text.first(target_len);
  byte_view version;
  const bool has_sp = lr.read_u8(c);
  result out = make(match::partial, protocol::http1);
  if (has_sp) {
    version = lr.rest();
    // While the line is open (or was cut), the version may be partial: a prefix of HTTP/x.y.
    if (!line.ended || line.cut) {
      if (literal(version, "HTTP/") == match::no) {
        return make(match::no, protocol::http1);
      }
    } else if (!http_version_ok(version)) {
      return make(match::no, protocol::http1);
    }
  } else if (line.ended && !line.cut) {
    return make(match::no, protocol::http1);  // "GET key": not HTTP (a Redis inline command?)
  }
  out.summary.append(method);
  out.summary.append(" ");
  std::size_t path_len = 0;
  byte_reader tr(target);
  while (tr.read_u8(c) && c != '?') {
    ++path_len;
  }
  append_field(out.summary, target.first(path_len), kMaxTargetShown);
  if (path_len < target.size()) {
    out.summary.append("?...");
  }
  if (!version.empty()) {
    out.summary.append(" ");
    append_field(out.summary, version, 8);
  }
  out.m = line.ended ? match::yes : match::partial;
  return out;
}

// match_http2_preface: the client connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".
result match_http2_preface(byte_view in) {
  result out = make(literal(in, kHttp2Preface), protocol::http2);
  if (out.m != match::no) {
    out.summary.append("HTTP/2 connection preface");
  }
  return out;
}

// match_http2_settings: a server's first HTTP/2 frame, SETTINGS on stream 0.
//
//   | length u24 (multiple of 6, <= 16384) | type 4 | flags 0 | R + stream id u32 = 0 |
result match_http2_settings(byte_view in) {
  byte_reader r(in);
  std::uint8_t b0 = 0;
  std::uint8_t b1 = 0;
  std::uint8_t b2 = 0;
  std::uint8_t type = 0;
  std::uint8_t flags = 0;
  std::uint32_t stream = 0;
  if (!r.read_u8(b0)) {
    return make(match::no, protocol::http2);
  }
  if (b0 != 0) {
    return make(match::no, protocol::http2);
  }
  if (!r.read_u8(b1) || !r.read_u8(b2)) {
    return make(b1 <= 0x40 ? match::partial : match::no, protocol::http2);
  }
  const auto len = static_cast<std::uint32_t>((b1 << 8U) | b2);
  if (len % 6 != 0 || len > 16384) {
    return make(match::no, protocol::http2);
  }
  if (!r.read_u8(type)) {
    return make(match::partial, protocol::http2);
  }
  if (type != 4) {
    return make(match::no, protocol::http2);
  }
  if (!r.read_u8(flags)) {
    return make(match::partial, protocol::http2);
  }
  if (flags != 0) {
    return make(match::no, protocol::http2);
  }
  if (!r.read_u32(stream)) {
    return make(match::partial, protocol::http2);
  }
  if (stream != 0) {
    return make(match::no, protocol::http2);
  }
  result out = make(match::yes, protocol::http2);
  out.summary.append("HTTP/2 SETTINGS frame (");
  append_number(out.summary, len / 6);
  out.summary.append(" settings)");
  return out;
}

// match_http_response: a status line "HTTP/x.y SP 3DIGIT [SP reason] CRLF"; summary: the line.
result match_http_response(byte_view in) {
  const match head = literal(in, "HTTP/");
  if (head != match::yes) {
    return make(head, protocol::http1);
  }
  const line_view line = first_line(in);
  byte_reader r(line.text);
  std::uint8_t c = 0;
  // "HTTP/x.y SP ddd": validate what has arrived, position by position.
  constexpr std::string_view kShape = "HTTP/9.9 999";
  for (char want : kShape) {
    if (!r.read_u8(c)) {
      return make(line.ended ? match::no : match::partial, protocol::http1);
    }
    const bool ok = want == '9' ? (c >= '0' && c <= '9') : c == static_cast<std::uint8_t>(want);
    if (!ok) {
      return make(match::no, protocol::http1);
    }
  }
  if (r.peek_u8(c) && c != ' ' && c != '\r') {  // a CR is there while the LF is not yet
    return make(match::no, protocol::http1);
  }
  result out = make(line.ended ? match::yes : match::partial, protocol::http1);
  append_field(out.summary, line.text, summary_text::kMaxSummary - 3);
  return out;
}

// ---- PostgreSQL --------------------------------------------------------------------------------

constexpr std::uint32_t kPgSslRequest = 80877103;
constexpr std::uint32_t kPgGssEncRequest = 80877104;
constexpr std::uint32_t kPgCancelRequest = 80877102;
constexpr std::uint32_t kPgMaxStartup = 10000;
constexpr std::uint32_t kPgMaxMessage = 30000;

// match_pg_client: a PostgreSQL client's first message (no type byte).
//
//   | length u32 (self-inclusive) | code u32 | ...
//   SSLRequest: 8, 80877103   GSSENCRequest: 8, 80877104   CancelRequest: 16, 80877102, pid, key
//   StartupMessage: len, 0x0003000m, { name NUL value NUL }*, NUL
// Summary: the request's name; for StartupMessage the user and database only (options may carry
// settings, never shown). A PasswordMessage ('p') is named, its content never shown.
result match_pg_client(byte_view in) {
  byte_reader r(in);
  std::uint32_t len = 0;
  std::uint32_t code = 0;
  std::uint8_t b0 = 0;
  if (!r.peek_u8(b0)) {
    return make(match::no, protocol::postgres);
  }
  if (b0 == 'p') {
    // PasswordMessage / SASLInitialResponse: 'p' then a length; name it, show nothing of it.
    std::uint32_t plen = 0;
    (void)r.skip(1);
    if (!r.read_u32(plen)) {
      const bool zero_prefix = literal(r.rest(), std::string_view("\0\0", 2)) != match::no;
      return make(zero_prefix ? match::partial : match::no, protocol::postgres);
    }
    if (plen < 5 || plen > kPgMaxMessage) {
      return make(match::no, protocol::postgres);
    }
    result out = make(match::yes, protocol::postgres);
    out.summary.append("PasswordMessage (content withheld)");
    return out;
  }
  if (b0 != 0) {
    return make(match::no, protocol::postgres);
  }
  if (!r.read_u32(len)) {
    // Lengths are < 2^16 here, so the first two bytes are zero.
    const bool ok = literal(in, std::string_view("\0\0", 2)) != match::no;
    return make(ok ? match::partial : match::no, protocol::postgres);
  }
  if (len < 8 || len > kPgMaxStartup) {
    return make(match::no, protocol::postgres);
  }
  if (!r.read_u32(code)) {
    return make(match::partial, protocol::postgres);
  }
  if (len == 8 && code == kPgSslRequest) {
    result out = make(match::yes, protocol::postgres_ssl_request);
    out.summary.append("SSLRequest");
    return out;
  }
  if (len == 8 && code == kPgGssEncRequest) {
    result out = make(match::yes, protocol::postgres);
    out.summary.append("GSSENCRequest");
    return out;
  }
  if (len == 16 && code == kPgCancelRequest) {
    result out = make(match::yes, protocol::postgres);
    out.summary.append("CancelRequest");
    return out;
  }
  if ((code >> 16U) != 3) {
    return make(match::no, protocol::postgres);
  }
  result out = make(match::partial, protocol::postgres);
  out.summary.append("StartupMessage");
  byte_reader params;
  if (!r.read_sub(len - 8, params)) {
    return out;  // not all there yet
  }
  out.m = match::yes;
  if ((code & 0xffffU) != 0) {
    out.summary.append(" v3.");
    append_number(out.summary, code & 0xffffU);
  }
  byte_view user;
  byte_view database;
  bool terminated = false;
  while (!params.empty()) {
    byte_view name;
    byte_view value;
    if (!read_cstring(params, name)) {
      break;
    }
    if (name.empty()) {
      terminated = params.empty();
      break;
    }
    if (!read_cstring(params, value)) {
      break;
    }
    if (equals(name, "user", false)) {
      user = value;
    } else if (equals(name, "database", false)) {
      database = value;
    }
  }
  if (!user.empty()) {
    out.summary.append(" user=");
    append_field(out.summary, user, 40);
  }
  if (!database.empty()) {
    out.summary.append(" database=");
    append_field(out.summary, database, 40);
  }
  if (!terminated) {
    out.summary.append(" (malformed)");
  }
  return out;
}

std::string_view pg_auth_name(std::uint32_t code) {
  switch (code) {
    case 0:
      return "AuthenticationOk";
    case 2:
      return "AuthenticationKerberosV5";
    case 3:
      return "AuthenticationCleartextPassword";
    case 5:
      return "AuthenticationMD5Password";
    case 7:
      return "AuthenticationGSS";
    case 8:
      return "AuthenticationGSSContinue";
    case 9:
      return "AuthenticationSSPI";
    case 10:
      return "AuthenticationSASL";
    case 11:
      return "AuthenticationSASLContinue";
    case 12:
      return "AuthenticationSASLFinal";
    default:
      return {};
  }
}

// pg_error_fields: ErrorResponse/NoticeResponse fields: { type u8, value NUL }*, NUL.
// Summary: severity (V, else S), SQLSTATE (C), message (M).
void pg_error_summary(byte_reader fields, summary_text& s) {
  byte_view severity_v;
  byte_view severity_s;
  byte_view code;
  byte_view message;
  std::uint8_t type = 0;
  while (fields.read_u8(type) && type != 0) {
    byte_view value;
    if (!read_cstring(fields, value)) {
      break;
    }
    switch (type) {
      case 'V':
        severity_v = value;
        break;
      case 'S':
        severity_s = value;
        break;
      case 'C':
        code = value;
        break;
      case 'M':
        message = value;
        break;
      default:
        break;
    }
  }
  const byte_view severity = severity_v.empty() ? severity_s : severity_v;
  append_field(s, severity, 10);
  if (!code.empty()) {
    s.append(" ");
    append_field(s, code, 5);
  }
  if (!message.empty()) {
    s.append(" ");
    // Only the message's first line: details and hints may follow a newline.
    append_field(s, first_line(message).text, summary_text::kMaxSummary);
  }
}

// match_pg_server: a PostgreSQL server's first bytes.
//
//   'S' | 'N' | 'G'                 answer to SSLRequest/GSSENCRequest (one byte)
//   'E' | length u32 | fields       ErrorResponse      'N' | length u32 | fields   NoticeResponse
//   'R' | length u32 | code u32 ... Authentication request (10: SASL with mechanism names)
result match_pg_server(byte_view in) {
  byte_reader r(in);
  std::uint8_t type = 0;
  if (!r.read_u8(type)) {
    return make(match::no, protocol::postgres);
  }
  const bool answer = type == 'S' || type == 'N' || type == 'G';
  std::uint8_t next = 0;
  if (answer && !r.peek_u8(next)) {
    // A lone answer byte: the server then waits for the client. More bytes could still make it
    // something else ('S' starts "SSH-", 'N' a NoticeResponse), so it stays partial (complete
    // false) with the summary of what it most likely is.
    result out = make(match::partial, protocol::postgres);
    out.summary.append(type == 'S'   ? "SSL accepted (S)"
                       : type == 'N' ? "SSL/GSSENC not supported (N)"
                                     : "GSSENC accepted (G)");
    return out;
  }
  if (answer && !(type == 'N' && next == 0)) {
    return make(match::no, protocol::postgres);  // the server sends the answer byte alone
  }
  if (type != 'E' && type != 'N' && type != 'R') {
    return make(match::no, protocol::postgres);
  }
  std::uint32_t len = 0;
  if (!r.read_u32(len)) {
    const bool ok = literal(r.rest(), std::string_view("\0\0", 2)) != match::no;
    return make(ok ? match::partial : match::no, protocol::postgres);
  }
  if (len < 5 || len > kPgMaxMessage) {
    return make(match::no, protocol::postgres);
  }
  byte_reader body;
  result out = make(match::partial, protocol::postgres);
  if (type == 'R') {
    std::uint32_t code = 0;
    if (len < 8) {
      return make(match::no, protocol::postgres);
    }
    if (r.read_u32(code) && pg_auth_name(code).empty()) {
      return make(match::no, protocol::postgres);
    }
    out.summary.append("Authentication request");
    r = byte_reader(in);
    if (!r.skip(5) || !r.read_sub(len - 4, body) || !body.read_u32(code)) {
      return out;
    }
    out.m = match::yes;
    out.summary.clear();
    out.summary.append(pg_auth_name(code));
    if (code == 10) {
      // SASL mechanism names (public, e.g. SCRAM-SHA-256), NUL-separated, NUL-terminated.
      byte_view mech;
      while (read_cstring(body, mech) && !mech.empty()) {
        out.summary.append(" ");
        append_field(out.summary, mech, 32);
      }
    }
    return out;
  }
  out.summary.append(type == 'E' ? "ErrorResponse" : "NoticeResponse");
  if (!r.read_sub(len - 4, body)) {
    return out;
  }
  out.m = match::yes;
  out.summary.clear();
  if (type == 'N') {
    out.summary.append("NOTICE: ");
  }
  pg_error_summary(body, out.summary);
  return out;
}

// ---- Redis -------------------------------------------------------------------------------------

// Inline commands are only recognized by name, so ordinary text is not mistaken for Redis.
constexpr std::array<std::string_view, 40> kRedisInline = {
    "PING",    "AUTH",     "HELLO",  "INFO",     "GET",       "SET",       "SELECT",     "QUIT",
    "ECHO",    "KEYS",     "DEL",    "EXISTS",   "MONITOR",   "SUBSCRIBE", "PSUBSCRIBE", "PUBLISH",
    "COMMAND", "CLIENT",   "CONFIG", "FLUSHALL", "FLUSHDB",   "DBSIZE",    "TYPE",       "TTL",
    "INCR",    "DECR",     "LPUSH",  "RPUSH",    "LRANGE",    "HGET",      "HSET",       "HGETALL",
    "SCAN",    "SHUTDOWN", "ROLE",   "CLUSTER",  "REPLICAOF", "SLAVEOF",   "MULTI",      "EXEC"};

bool is_command_char(std::uint8_t c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '|' || c == '.';
}

// read_resp_int: ASCII digits up to CRLF. `partial` when the input ends first.
match read_resp_int(byte_reader& r, std::uint32_t& out, std::size_t max_digits) {
  std::uint32_t v = 0;
  std::size_t digits = 0;
  std::uint8_t c = 0;
  while (r.read_u8(c)) {
    if (c == '\r') {
      std::uint8_t lf = 0;
      if (!r.read_u8(lf)) {
        return digits > 0 ? match::partial : match::no;
      }
      if (lf != '\n' || digits == 0) {
        return match::no;
      }
      out = v;
      return match::yes;
    }
    if (c < '0' || c > '9' || ++digits > max_digits) {
      return match::no;
    }
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return match::partial;
}

// match_redis_client: a RESP array of bulk strings "*N\r\n$L\r\nNAME\r\n..." or an inline
// command "NAME args\r\n". Summary: the command name only - never an argument (AUTH's password,
// HELLO's AUTH pair, CONFIG SET values).
result match_redis_client(byte_view in) {
  byte_reader r(in);
  std::uint8_t star = 0;
  if (!r.peek_u8(star)) {
    return make(match::no, protocol::redis);
  }
  result out = make(match::partial, protocol::redis);
  if (star == '*') {
    (void)r.skip(1);
    std::uint32_t count = 0;
    std::uint32_t name_len = 0;
    std::uint8_t dollar = 0;
    match m = read_resp_int(r, count, 7);
    if (m != match::yes || count == 0) {
      return make(m == match::yes ? match::no : m, protocol::redis);
    }
    if (!r.read_u8(dollar)) {
      return out;
    }
    if (dollar != '$') {
      return make(match::no, protocol::redis);
    }
    m = read_resp_int(r, name_len, 3);
    if (m != match::yes || name_len == 0 || name_len > 64) {
      return make(m == match::yes ? match::no : m, protocol::redis);
    }
    byte_view name;
    if (!r.read_bytes(name_len, name)) {
      // Validate what has arrived of the name.
      byte_reader nr(r.rest());
      std::uint8_t c = 0;
      while (nr.read_u8(c)) {
        if (!is_command_char(c)) {
          return make(match::no, protocol::redis);
        }
      }
      return out;
    }
    byte_reader nr(name);
    std::uint8_t c = 0;
    while (nr.read_u8(c)) {
      if (!is_command_char(c)) {
        return make(match::no, protocol::redis);
      }
    }
    out.m = match::yes;
    append_field(out.summary, name, 32);
    return out;
  }
  // Inline: a known command word, then SP or the line end.
  byte_reader wr(in);
  std::size_t word_len = 0;
  std::uint8_t c = 0;
  while (wr.peek_u8(c) && is_command_char(c) && word_len <= 16) {
    (void)wr.skip(1);
    ++word_len;
  }
  const byte_view word = in.first(word_len);
  const bool ended = wr.peek_u8(c);  // something follows the word
  if (ended && c != ' ' && c != '\r' && c != '\n') {
    return make(match::no, protocol::redis);
  }
  for (std::string_view cmd : kRedisInline) {
    if (ended ? equals(word, cmd, true) : literal(word, cmd, true) != match::no) {
      out.m = ended ? match::yes : match::partial;
      if (ended) {
        out.summary.append(cmd);
      }
      return out;
    }
  }
  return make(match::no, protocol::redis);
}

// match_redis_server: a RESP reply. Simple strings and errors show their first line, except an
// error's echo of the caller's arguments ("..., with args beginning with: ..."), which is cut.
// "+OK " followed by text is a POP3 greeting, not Redis (see match_mail).
result match_redis_server(byte_view in) {
  byte_reader r(in);
  std::uint8_t type = 0;
  if (!r.read_u8(type)) {
    return make(match::no, protocol::redis);
  }
  if (type == '+' || type == '-') {
    const line_view line = first_line(in);
    if (type == '+') {
      const match pop = literal(in, "+OK ");
      if (pop == match::yes || (pop == match::partial && !line.ended)) {
        return make(pop == match::yes ? match::no : match::partial, protocol::redis);
      }
    }
    result out = make(line.ended ? match::yes : match::partial, protocol::redis);
    byte_view text = line.text;
    // Cut an echo of the caller's arguments.
    byte_reader scan(text);
    std::size_t keep = 0;
    while (scan.remaining() > 0 && literal(scan.rest(), ", with args", true) != match::yes) {
      (void)scan.skip(1);
      ++keep;
    }
    text = text.first(keep);
    append_field(out.summary, text, 100);
    return out;
  }
  if (type == ':' || type == '$' || type == '*' || type == '%') {
    std::uint32_t n = 0;
    std::uint8_t c = 0;
    if (type == '$' && r.peek_u8(c) && c == '-') {
      (void)r.skip(1);  // $-1: a null bulk string
    }
    const match m = read_resp_int(r, n, 10);
    if (m != match::yes) {
      return make(m, protocol::redis);
    }
    result out = make(match::yes, protocol::redis);
    out.summary.append(type == ':'   ? "RESP integer reply"
                       : type == '$' ? "RESP bulk string reply"
                       : type == '*' ? "RESP array reply"
                                     : "RESP map reply");
    return out;
  }
  return make(match::no, protocol::redis);
}

// ---- SSH ---------------------------------------------------------------------------------------

// match_ssh: the identification string "SSH-protoversion-softwareversion SP comments CRLF"
// (RFC 4253 section 4.2, at most 255 bytes); summary: the line.
result match_ssh(byte_view in) {
  const match head = literal(in, "SSH-");
  if (head != match::yes) {
    return make(head, protocol::ssh);
  }
  const line_view line = first_line(take(in, 255));
  result out = make(line.ended || in.size() >= 255 ? match::yes : match::partial, protocol::ssh);
  append_field(out.summary, line.text, summary_text::kMaxSummary - 3);
  return out;
}

// ---- MySQL -------------------------------------------------------------------------------------

// match_mysql: the server's first packet.
//
//   | payload length u24 LE | sequence 0 | 0x0a protocol 10 | server version NUL | ...
//   | payload length u24 LE | sequence 0 | 0xff | error code u16 LE | '#' sqlstate(5) | message |
result match_mysql(byte_view in) {
  byte_reader r(in);
  std::uint8_t l0 = 0;
  std::uint8_t l1 = 0;
  std::uint8_t l2 = 0;
  std::uint8_t seq = 0;
  std::uint8_t kind = 0;
  if (!r.read_u8(l0)) {
    return make(match::no, protocol::mysql);
  }
  if (!r.read_u8(l1)) {
    return make(match::partial, protocol::mysql);
  }
  if (l1 > 0x04) {
    return make(match::no, protocol::mysql);
  }
  if (!r.read_u8(l2)) {
    return make(match::partial, protocol::mysql);
  }
  const auto len = static_cast<std::size_t>(l0 | (l1 << 8U) | (l2 << 16U));
  if (l2 != 0 || len < 4 || len > 1024) {
    return make(match::no, protocol::mysql);
  }
  if (!r.read_u8(seq)) {
    return make(match::partial, protocol::mysql);
  }
  if (seq != 0) {
    return make(match::no, protocol::mysql);
  }
  if (!r.read_u8(kind)) {
    return make(match::partial, protocol::mysql);
  }
  result out = make(match::partial, protocol::mysql);
  if (kind == 0x0a) {
    byte_reader version_reader = r;
    byte_view version;
    if (!read_cstring(version_reader, version)) {
      // Validate the version string so far (printable).
      byte_reader vr(take(r.rest(), len - 1));
      std::uint8_t c = 0;
      while (vr.read_u8(c)) {
        if (c < 0x20 || c >= 0x7f) {
          return make(match::no, protocol::mysql);
        }
      }
      if (r.remaining() >= len - 1) {
        return make(match::no, protocol::mysql);  // no NUL within the packet
      }
      out.summary.append("MySQL greeting");
      return out;
    }
    if (version.empty() || version.size() >= len - 1) {
      return make(match::no, protocol::mysql);
    }
    byte_reader vr(version);
    std::uint8_t c = 0;
    while (vr.read_u8(c)) {
      if (c < 0x20 || c >= 0x7f) {
        return make(match::no, protocol::mysql);
      }
    }
    out.m = match::yes;
    out.summary.append("MySQL protocol 10, server ");
    append_field(out.summary, version, 60);
    return out;
  }
  if (kind == 0xff) {
    std::uint8_t c0 = 0;
    std::uint8_t c1 = 0;
    out.summary.append("MySQL error");
    byte_reader payload;
    byte_reader whole(in);
    if (!whole.skip(4) || !whole.read_sub(len, payload)) {
      return out;
    }
    if (!payload.skip(1) || !payload.read_u8(c0) || !payload.read_u8(c1)) {
      return make(match::no, protocol::mysql);
    }
    out.m = match::yes;
    out.summary.append(" ");
    append_number(out.summary, static_cast<std::uint32_t>(c0 | (c1 << 8U)));
    std::uint8_t hash = 0;
    if (payload.peek_u8(hash) && hash == '#') {
      byte_view state;
      (void)payload.skip(1);
      if (payload.read_bytes(5, state)) {
        out.summary.append(" (");
        out.summary.append_escaped(state);
        out.summary.append(")");
      }
    }
    out.summary.append(": ");
    append_field(out.summary, first_line(payload.rest()).text, summary_text::kMaxSummary);
    return out;
  }
  return make(match::no, protocol::mysql);
}

// ---- SMTP / FTP / IMAP / POP3 greetings --------------------------------------------------------

// match_mail: a server greeting line; summary: the line.
//   "220 " / "220-"   SMTP or FTP. The line decides: a word containing "FTP" (and no "SMTP")
//                     means FTP; anything else - "ESMTP", "SMTP" or neither - is reported as SMTP.
//   "421 " / "554 "   a refusing greeting, only when the line names SMTP or FTP.
//   "* OK" / "* PREAUTH" / "* BYE"   IMAP.      "+OK " / "+OK\r\n" + text   POP3 ("+OK " only).
result match_mail(byte_view in) {
  const line_view line = first_line(in);
  const match m220 = literal(in, "220");
  const match m421 = literal(in, "421");
  const match m554 = literal(in, "554");
  std::uint8_t sep = 0;
  byte_reader r(in);
  const bool has_sep = r.skip(3) && r.read_u8(sep);
  if (m220 != match::no || m421 != match::no || m554 != match::no) {
    const bool full = m220 == match::yes || m421 == match::yes || m554 == match::yes;
    if (!full || !has_sep) {
      return make(match::partial, protocol::smtp);
    }
    if (sep != ' ' && sep != '-' && !(sep == '\r' || sep == '\n')) {
      return make(match::no, protocol::smtp);
    }
    const bool smtp_word = contains(line.text, "SMTP");
    const bool ftp_word = !smtp_word && contains(line.text, "FTP");
    if (m220 != match::yes && !smtp_word && !ftp_word) {
      return make(line.ended ? match::no : match::partial, protocol::smtp);
    }
    result out =
        make(line.ended ? match::yes : match::partial, ftp_word ? protocol::ftp : protocol::smtp);
    append_field(out.summary, line.text, summary_text::kMaxSummary - 3);
    return out;
  }
  for (std::string_view imap : {"* OK", "* PREAUTH", "* BYE"}) {
    const match mi = literal(in, imap);
    if (mi == match::partial) {
      // "* " also starts a Redis array only with a digit, so "*" alone stays open for both.
      return make(match::partial, protocol::imap);
    }
    if (mi == match::yes) {
      result out = make(line.ended ? match::yes : match::partial, protocol::imap);
      append_field(out.summary, line.text, summary_text::kMaxSummary - 3);
      return out;
    }
  }
  const match pop = literal(in, "+OK ");
  if (pop == match::partial) {
    return make(match::partial, protocol::pop3);
  }
  if (pop == match::yes) {
    result out = make(line.ended ? match::yes : match::partial, protocol::pop3);
    append_field(out.summary, line.text, summary_text::kMaxSummary - 3);
    return out;
  }
  return make(match::no, protocol::smtp);
}

// ---- unknown -----------------------------------------------------------------------------------

// unknown_summary: text shows its first word (at most 16 characters): commands are words, their
// arguments may be secrets. Binary shows its first 8 bytes as \xNN. Returns whether the summary
// is final: the word has ended (or passed 16 characters), or more than 8 bytes are there.
bool unknown_summary(byte_view in, summary_text& s) {
  constexpr std::size_t kWordShown = 16;
  constexpr std::size_t kBinaryShown = 8;
  byte_reader r(in);
  std::uint8_t c = 0;
  if (r.peek_u8(c) && c >= 0x21 && c < 0x7f) {
    std::size_t n = 0;
    bool ended = false;
    while (r.read_u8(c)) {
      if (c < 0x21 || c >= 0x7f) {
        ended = true;
        break;
      }
      ++n;
    }
    s.append("text: ");
    append_field(s, in.first(n), kWordShown);
    return ended || n > kWordShown;
  }
  s.append("binary: ");
  append_field(s, in, kBinaryShown);
  return in.size() > kBinaryShown;
}

// ---- the driver --------------------------------------------------------------------------------

using matcher = result (*)(byte_view);

result match_tls_client(byte_view in) { return match_tls(in, direction::client_to_server); }
result match_tls_server(byte_view in) { return match_tls(in, direction::server_to_client); }

// Priority order. Client: PROXY first (it precedes everything), then TLS, HTTP/2 before HTTP/1
// (both start with a method-like word), PostgreSQL, SSH, Redis last (inline commands are words).
constexpr std::array<matcher, 7> kClientMatchers = {
    match_proxy,     match_tls_client, match_http2_preface, match_http_request,
    match_pg_client, match_ssh,        match_redis_client};

// Server: TLS, HTTP, PostgreSQL before SSH (a lone 'S' most likely answers an SSLRequest; "SS"
// rules PostgreSQL out), the greetings before Redis ("+OK " is POP3), MySQL last (its first byte
// is a length byte, so it keeps any one-byte input open).
constexpr std::array<matcher, 9> kServerMatchers = {
    match_proxy, match_tls_server, match_http_response, match_http2_settings, match_pg_server,
    match_ssh,   match_mail,       match_redis_server,  match_mysql};

template <std::size_t N>
detection run(byte_view in, const std::array<matcher, N>& matchers) {
  detection out;
  for (matcher m : matchers) {
    const result res = m(in);
    if (res.m == match::no) {
      continue;
    }
    // The first matcher that does not rule itself out decides: a firm `yes` is complete; a
    // `partial` is the best guess, and later matchers cannot overrule it before it resolves.
    out.proto = res.proto;
    out.summary = res.summary;
    out.complete = res.m == match::yes;
    return out;
  }
  out.proto = protocol::unknown;
  out.complete = unknown_summary(in, out.summary);
  return out;
}

}  // namespace

detection detect_first_flight(std::span<const std::uint8_t> in, direction dir) {
  if (in.empty()) {
    return detection{};
  }
  return dir == direction::client_to_server ? run(in, kClientMatchers) : run(in, kServerMatchers);
}

}  // namespace linesman::tls
