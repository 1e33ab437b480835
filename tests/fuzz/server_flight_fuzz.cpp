// server_flight_fuzz: libFuzzer target for tls::parse_server_flight.
//
// Besides "no crash, no sanitizer finding", it checks what a proxy relies on:
//   - spans in the result point into the input or the scratch buffer;
//   - a verdict other than `incomplete` is final: a prefix of the input is either `incomplete` or
//     has the whole input's status, and a complete answer is the same for every input that
//     extends the bytes it was read from;
//   - the scratch size only matters when a message spans records.
// Seeds: tests/data/corpus/cases (client flights: they exercise the not_tls/malformed paths) and
// whatever the fuzzer finds from there.
#include "tls/server_hello.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>

namespace {

using linesman::tls::parse_server_flight;
using linesman::tls::server_flight;
using linesman::tls::server_status;

std::array<std::uint8_t, linesman::tls::kServerScratchBytes> scratch_a;
std::array<std::uint8_t, linesman::tls::kServerScratchBytes> scratch_b;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool within(std::span<const std::uint8_t> inner, std::span<const std::uint8_t> outer) {
  if (inner.empty()) {
    return true;
  }
  const auto* b = inner.data();
  return b >= outer.data() && b + inner.size() <= outer.data() + outer.size();
}

bool same(const server_flight& a, const server_flight& b) {
  const bool alerts_equal = a.alert.has_value() == b.alert.has_value() &&
                            (!a.alert || (a.alert->level == b.alert->level &&
                                          a.alert->description == b.alert->description));
  return a.has_server_hello == b.has_server_hello &&
         a.hello_retry_request == b.hello_retry_request && a.legacy_version == b.legacy_version &&
         a.selected_version == b.selected_version && a.cipher_suite == b.cipher_suite &&
         a.key_share_group == b.key_share_group && alerts_equal &&
         a.certificate_too_large == b.certificate_too_large && a.flight_bytes == b.flight_bytes &&
         a.records == b.records && std::ranges::equal(a.leaf_certificate, b.leaf_certificate);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  server_flight whole;
  const server_status st = parse_server_flight(in, scratch_a, whole);
  check(within(whole.leaf_certificate, in) || within(whole.leaf_certificate, scratch_a));
  check(whole.flight_bytes <= size);
  if (st == server_status::complete) {
    check(whole.flight_bytes > 0);
    check(whole.has_server_hello || whole.alert.has_value());
  }

  // Prefixes: incomplete, or the same final verdict.
  for (std::size_t cut :
       {size / 2, size == 0 ? std::size_t{0} : size - 1,
        whole.flight_bytes == 0 ? std::size_t{0} : whole.flight_bytes - 1, whole.flight_bytes}) {
    if (cut > size) {
      continue;
    }
    server_flight part;
    const server_status ps = parse_server_flight(in.first(cut), scratch_b, part);
    if (ps != server_status::incomplete) {
      check(ps == st);
      if (ps == server_status::complete) {
        check(same(part, whole));
      }
    }
    if (st == server_status::complete) {
      check((cut < whole.flight_bytes) == (ps == server_status::incomplete));
    }
  }

  // With no scratch at all, an answer read in place must not change.
  server_flight bare;
  const server_status bs = parse_server_flight(in, {}, bare);
  if (bs == server_status::complete && !bare.certificate_too_large &&
      st == server_status::complete && !whole.certificate_too_large) {
    check(same(bare, whole));
  }
  return 0;
}
