// json_writer: appends JSON text straight to a caller's buffer (the log sink's batch), with no
// tree in between. It is the one serializer of access-log records; proxy/record_format.cpp holds
// the field mappings (linesman, ECS, OTLP) that drive it.
//
// Commas are placed by the writer: after a value or a closed container the next key or value is
// preceded by one. It does not check that keys and values alternate; the mappings are fixed code
// covered by byte-for-byte and schema tests.
#pragma once

#include <cstdint>
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
  // json_writer: appends to `out`, which must outlive the writer.
  explicit json_writer(std::string& out) : out_(out) {}

  void begin_object() {
    separate();
    out_ += '{';
    comma_ = false;
  }
  void end_object() {
    out_ += '}';
    comma_ = true;
  }
  void begin_array() {
    separate();
    out_ += '[';
    comma_ = false;
  }
  void end_array() {
    out_ += ']';
    comma_ = true;
  }
  // key: the name of the next member; the value follows with one of the calls below. Names are
  // written in this code (the record formats' field names), never read from outside: they go in
  // as they are, without append_json_string's escaping pass.
  void key(std::string_view k) {
    separate();
    out_ += '"';
    out_ += k;
    out_ += "\":";
    comma_ = false;
  }
  void string(std::string_view v) {
    separate();
    append_json_string(out_, v);
    comma_ = true;
  }
  void null() { literal("null"); }
  void boolean(bool v) { literal(v ? "true" : "false"); }
  void integer(std::int64_t v);
  void unsigned_integer(std::uint64_t v);
  // millis: microseconds written as milliseconds (append_millis).
  void millis(std::int64_t us) {
    separate();
    append_millis(out_, us);
    comma_ = true;
  }
  // raw: already serialized JSON (e.g. a nested nlohmann value dumped by the caller).
  void raw(std::string_view json) { literal(json); }

  // Shorthands for a member: key and value in one call.
  void member(std::string_view k, std::string_view v) {
    key(k);
    string(v);
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

 private:
  void separate() {
    if (comma_) {
      out_ += ',';
    }
  }
  void literal(std::string_view text) {
    separate();
    out_ += text;
    comma_ = true;
  }

  std::string& out_;
  bool comma_ = false;
};

}  // namespace linesman::proxy
