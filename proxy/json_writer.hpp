// json_writer: appends JSON text straight to a caller's buffer (the log sink's batch), with no
// tree in between. It is the one serializer of access-log records; proxy/record_format.cpp holds
// the field mappings (linesman, ECS, OTLP) that drive it.
//
// Commas are placed by the writer: after a value or a closed container the next key or value is
// preceded by one. It does not check that keys and values alternate; the mappings are fixed code
// covered by byte-for-byte and schema tests.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace linesman::proxy {

// append_json_string: `s` as a JSON string (quotes included), escaped as nlohmann::json's
// dump(-1, ' ', false, error_handler_t::replace) does it, so records read the same as before:
// `"` `\` and \b \f \n \r \t by their short escapes, other bytes below 0x20 as \u00xx (lowercase
// hex), everything else as is (UTF-8 passes through, DEL included). Invalid UTF-8 becomes U+FFFD:
// a byte that cannot start a sequence is replaced; a sequence cut short is replaced as a whole
// and the byte that cut it is read again as a new start; a sequence cut by the end of the string
// is replaced too. Overlong forms, surrogates and code points above U+10FFFF are invalid.
void append_json_string(std::string& out, std::string_view s);

// append_millis: `us` microseconds as a decimal number of milliseconds with up to three
// fractional digits, trailing zeros dropped but at least one ("12.345", "1.5", "7.0"): exactly
// the shortest form nlohmann::json prints for the double us / 1000.0 (below 10^12 ms).
void append_millis(std::string& out, std::int64_t us);

class json_writer {
 public:
  // json_writer: appends to `out`, which must outlive the writer. The text gathers in a buffer of
  // the writer's own and reaches `out` when that is full and when the writer goes: a record is
  // about 1.6 KB in small pieces, and one std::string append per piece (a capacity check, a
  // length update, a memcpy call) was half of its serialization (bench/record_bench.cpp).
  explicit json_writer(std::string& out) : out_(out) {}
  json_writer(const json_writer&) = delete;
  json_writer& operator=(const json_writer&) = delete;
  ~json_writer() { flush(); }

  void begin_object() { open('{'); }
  void end_object() { close('}'); }
  void begin_array() { open('['); }
  void end_array() { close(']'); }
  // key: the name of the next member; the value follows with one of the calls below. Names are
  // written in this code (the record formats' field names), never read from outside: they go in
  // as they are, without append_json_string's escaping pass.
  void key(std::string_view k) {
    if (k.size() + 4 > kBuffer - used_) {
      flush();
    }
    if (k.size() + 4 > kBuffer) {
      long_key(k);
      return;
    }
    char* at = buf_.data() + used_;
    std::size_t n = 0;
    if (comma_) {
      at[n++] = ',';
    }
    at[n++] = '"';
    std::memcpy(at + n, k.data(), k.size());
    n += k.size();
    at[n++] = '"';
    at[n++] = ':';
    used_ += n;
    comma_ = false;
  }
  void string(std::string_view v);
  // word: a string value written by this code, never read from outside: an enum's name, a name
  // from a fixed table (TLS versions, groups, ciphers, alerts, errno) or a fingerprint (hex
  // digits and JA4's letters). It goes in as it is, without append_json_string's escaping pass,
  // as key() does; the tables' names are checked to need none
  // (tests/unit/proxy/record_format_test.cpp, NamesWrittenAsWordsNeedNoEscape).
  void word(std::string_view v) {
    separate();
    put('"');
    put(v);
    put('"');
    comma_ = true;
  }
  void null() { literal("null"); }
  void boolean(bool v) { literal(v ? "true" : "false"); }
  void integer(std::int64_t v);
  void unsigned_integer(std::uint64_t v);
  // millis: microseconds written as milliseconds (append_millis).
  void millis(std::int64_t us);
  // raw: already serialized JSON (e.g. a nested nlohmann value dumped by the caller).
  void raw(std::string_view json) { literal(json); }

  // Shorthands for a member: key and value in one call.
  void member(std::string_view k, std::string_view v) {
    key(k);
    string(v);
  }
  void member_word(std::string_view k, std::string_view v) {
    key(k);
    word(v);
  }
  void member_int(std::string_view k, std::int64_t v) {
    key(k);
    integer(v);
  }
  void member_uint(std::string_view k, std::uint64_t v) {
    key(k);
    unsigned_integer(v);
  }
  void member_bool(std::string_view k, bool v) {
    key(k);
    boolean(v);
  }

  // put: `c` / `text` as they are, after what the writer holds (the escaping and number code in
  // proxy/json_writer.cpp writes through these).
  void put(char c) {
    if (used_ == kBuffer) {
      flush();
    }
    buf_[used_++] = c;
  }
  void put(std::string_view text) {
    if (text.empty()) {
      return;  // an empty view may hold a null pointer, which memcpy must not be given
    }
    if (text.size() > kBuffer - used_) {
      flush();
      if (text.size() > kBuffer) {
        out_.append(text);
        return;
      }
    }
    std::memcpy(buf_.data() + used_, text.data(), text.size());
    used_ += text.size();
  }

 private:
  // kBuffer: what the writer gathers before it appends to out_.
  static constexpr std::size_t kBuffer = 1024;

  void flush() {
    out_.append(buf_.data(), used_);
    used_ = 0;
  }
  void separate() {
    if (comma_) {
      put(',');
    }
  }
  void open(char bracket) {
    separate();
    put(bracket);
    comma_ = false;
  }
  void close(char bracket) {
    put(bracket);
    comma_ = true;
  }
  void literal(std::string_view text) {
    separate();
    put(text);
    comma_ = true;
  }
  void long_key(std::string_view k);

  std::string& out_;
  std::array<char, kBuffer> buf_;  // not zeroed: only [0, used_) is read
  std::size_t used_ = 0;
  bool comma_ = false;
};

}  // namespace linesman::proxy
