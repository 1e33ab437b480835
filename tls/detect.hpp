// detect: first-bytes protocol detection with a one-line printable summary, both directions.
#pragma once

#include "tls/protocol.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace linesman::tls {

// summary_text: a bounded, printable, allocation-free line (at most kMaxSummary characters).
class summary_text {
 public:
  static constexpr std::size_t kMaxSummary = 120;
  [[nodiscard]] std::string_view view() const { return {buf_.data(), len_}; }
  [[nodiscard]] bool empty() const { return len_ == 0; }
  // append: printable ASCII is copied, anything else is written as \xNN; stops at the bound.
  void append(std::string_view s);
  void append_escaped(std::span<const std::uint8_t> bytes);
  void clear() { len_ = 0; }

 private:
  std::array<char, kMaxSummary> buf_{};
  std::size_t len_ = 0;
};

// detection: what the first bytes of one direction are.
struct detection {
  protocol proto = protocol::none;
  // complete: the bytes hold enough to be sure of `proto` and its summary; false means more bytes
  // could change the answer (e.g. "HTTP/1." without the line end yet).
  bool complete = false;
  summary_text summary;
};

// detect_first_flight: classify `in` (the first bytes one side sent, possibly a prefix) and
// summarize it. Pure; never reads outside `in`; never puts secrets in the summary (no passwords,
// no AUTH arguments, nothing past the protocol's first line).
detection detect_first_flight(std::span<const std::uint8_t> in, direction dir);

}  // namespace linesman::tls
