// detect_fuzz: libFuzzer target for tls::detect_first_flight, both directions.
//
// Checks, besides "no crash, no sanitizer finding":
//   - every summary is at most 120 characters, all printable ASCII (0x20..0x7e);
//   - `complete` means final: the answer for any prefix that is complete equals the answer for
//     the whole input, and appending bytes to a complete input does not change it.
// Seeds: tests/data/corpus/cases.
#include "tls/detect.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

namespace {

using linesman::tls::detect_first_flight;
using linesman::tls::detection;
using linesman::tls::direction;
using linesman::tls::summary_text;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

void check_summary(const detection& d) {
  const std::string_view s = d.summary.view();
  check(s.size() <= summary_text::kMaxSummary);
  for (char c : s) {
    check(c >= 0x20 && c < 0x7f);
  }
}

bool same(const detection& a, const detection& b) {
  return a.proto == b.proto && a.summary.view() == b.summary.view();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  for (direction dir : {direction::client_to_server, direction::server_to_client}) {
    const detection whole = detect_first_flight(in, dir);
    check_summary(whole);
    for (std::size_t cut : {size / 3, size / 2, size == 0 ? std::size_t{0} : size - 1}) {
      const detection part = detect_first_flight(in.first(cut), dir);
      check_summary(part);
      if (part.complete) {
        check(whole.complete && same(part, whole));
      }
    }
    if (whole.complete) {
      std::vector<std::uint8_t> longer(in.begin(), in.end());
      longer.insert(longer.end(), {'\r', '\n', 0x00, 0xff, ' '});
      const detection more = detect_first_flight(longer, dir);
      check(more.complete && same(more, whole));
    }
  }
  return 0;
}
