#include "proxy/json_writer.hpp"

#include <charconv>
#include <cstring>

namespace linesman::proxy {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD in UTF-8

// utf8_continuation_range: the bytes allowed as the first continuation byte after `lead` (RFC
// 3629 section 4: no overlong forms, no surrogates, nothing above U+10FFFF), the later ones are
// always 0x80..0xBF. Returns the sequence length, 0 when `lead` cannot start one.
int utf8_sequence(unsigned char lead, unsigned char& lo, unsigned char& hi) {
  lo = 0x80;
  hi = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    return 2;
  }
  if (lead >= 0xE0 && lead <= 0xEF) {
    lo = lead == 0xE0 ? 0xA0 : 0x80;
    hi = lead == 0xED ? 0x9F : 0xBF;
    return 3;
  }
  if (lead >= 0xF0 && lead <= 0xF4) {
    lo = lead == 0xF0 ? 0x90 : 0x80;
    hi = lead == 0xF4 ? 0x8F : 0xBF;
    return 4;
  }
  return 0;
}

// string_out: a std::string behind the put() calls that json_writer also offers, so that one
// escaping and number code serves both.
struct string_out {
  std::string& s;
  void put(char c) { s += c; }
  void put(std::string_view text) { s += text; }
};

template <typename Out>
void put_escaped_ascii(Out& out, unsigned char c) {
  switch (c) {
    case '"':
      out.put("\\\"");
      return;
    case '\\':
      out.put("\\\\");
      return;
    case '\b':
      out.put("\\b");
      return;
    case '\f':
      out.put("\\f");
      return;
    case '\n':
      out.put("\\n");
      return;
    case '\r':
      out.put("\\r");
      return;
    case '\t':
      out.put("\\t");
      return;
    default:
      break;
  }
  if (c < 0x20) {
    static constexpr char kHex[] = "0123456789abcdef";
    out.put("\\u00");
    out.put(kHex[c >> 4]);
    out.put(kHex[c & 0xF]);
  } else {
    out.put(static_cast<char>(c));
  }
}

// plain: an ASCII byte JSON takes as it is.
bool plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

// plain_word: whether the eight bytes at `at` are all plain: none at or above 0x80, below 0x20,
// '"' or '\\' (the usual word-at-a-time tests; a borrow can flag a word that holds none, which
// only sends that word to the byte loop).
bool plain_word(std::string_view s, std::size_t at) {
  constexpr std::uint64_t kOnes = 0x0101010101010101ULL;
  constexpr std::uint64_t kHigh = 0x8080808080808080ULL;
  const auto below = [](std::uint64_t w, std::uint64_t n) { return (w - n * kOnes) & ~w & kHigh; };
  std::uint64_t w = 0;
  std::memcpy(&w, s.substr(at, 8).data(), 8);
  return ((w & kHigh) | below(w, 0x20) | below(w ^ ('"' * kOnes), 1) |
          below(w ^ ('\\' * kOnes), 1)) == 0;
}

// plain_end: where the run of plain bytes that starts at `i` ends, eight bytes per step. Most of a
// record is plain ASCII. A tail shorter than a word is tried as the string's last eight bytes,
// which overlap bytes already read: when they are all plain the run reaches the end (when the
// overlap holds a byte before the run that is not, the byte loop decides).
std::size_t plain_end(std::string_view s, std::size_t i) {
  for (; i + 8 <= s.size(); i += 8) {
    if (!plain_word(s, i)) {
      break;
    }
  }
  if (i < s.size() && i + 8 > s.size() && s.size() >= 8 && plain_word(s, s.size() - 8)) {
    return s.size();
  }
  while (i < s.size() && plain(static_cast<unsigned char>(s[i]))) {
    ++i;
  }
  return i;
}

// put_json_string: append_json_string's work, through `out`.
template <typename Out>
void put_json_string(Out& out, std::string_view s) {
  out.put('"');
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (plain(c)) {
      // A run that needs no escape goes in at once.
      const std::size_t j = plain_end(s, i + 1);
      out.put(s.substr(i, j - i));
      i = j;
      continue;
    }
    if (c < 0x80) {
      put_escaped_ascii(out, c);
      ++i;
      continue;
    }
    unsigned char lo = 0;
    unsigned char hi = 0;
    const int len = utf8_sequence(c, lo, hi);
    if (len == 0) {
      out.put(kReplacement);  // a byte that cannot start a sequence
      ++i;
      continue;
    }
    int got = 1;
    while (got < len && i + static_cast<std::size_t>(got) < s.size()) {
      const auto b = static_cast<unsigned char>(s[i + static_cast<std::size_t>(got)]);
      if (b < lo || b > hi) {
        break;
      }
      lo = 0x80;
      hi = 0xBF;
      ++got;
    }
    if (got == len) {
      out.put(s.substr(i, static_cast<std::size_t>(len)));
    } else {
      out.put(kReplacement);  // cut short: the byte that cut it starts over
    }
    i += static_cast<std::size_t>(got);
  }
  out.put('"');
}

// put_millis: append_millis's work, through `out`.
template <typename Out>
void put_millis(Out& out, std::int64_t us) {
  if (us < 0) {
    out.put('-');
  }
  const std::uint64_t mag =
      us < 0 ? 0 - static_cast<std::uint64_t>(us) : static_cast<std::uint64_t>(us);
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, mag / 1000);
  out.put(std::string_view(buf, static_cast<std::size_t>(end - buf)));
  auto frac = static_cast<unsigned>(mag % 1000);
  out.put('.');
  if (frac == 0) {
    out.put('0');
    return;
  }
  char digits[3] = {static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                    static_cast<char>('0' + frac % 10)};
  std::size_t n = 3;
  while (digits[n - 1] == '0') {
    --n;
  }
  out.put(std::string_view(digits, n));
}

template <typename Out, typename Int>
void put_integer(Out& out, Int v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  out.put(std::string_view(buf, static_cast<std::size_t>(end - buf)));
}

}  // namespace

void append_json_string(std::string& out, std::string_view s) {
  string_out o{out};
  put_json_string(o, s);
}

void append_millis(std::string& out, std::int64_t us) {
  string_out o{out};
  put_millis(o, us);
}

void json_writer::string(std::string_view v) {
  separate();
  put_json_string(*this, v);
  comma_ = true;
}

void json_writer::millis(std::int64_t us) {
  separate();
  put_millis(*this, us);
  comma_ = true;
}

void json_writer::integer(std::int64_t v) {
  separate();
  put_integer(*this, v);
  comma_ = true;
}

void json_writer::unsigned_integer(std::uint64_t v) {
  separate();
  put_integer(*this, v);
  comma_ = true;
}

void json_writer::long_key(std::string_view k) {
  separate();
  put('"');
  put(k);
  put("\":");
  comma_ = false;
}

}  // namespace linesman::proxy
