// proxy_header_fuzz: libFuzzer target for tls::parse_proxy_header and the v1/v2 writers.
//
// Checks, besides "no crash, no sanitizer finding":
//   - a complete header's length lies within the input, every prefix shorter than it is
//     incomplete, and the header parses the same with anything appended;
//   - a parsed TCP4/TCP6 header written again with write_proxy_v1 and write_proxy_v2 parses back
//     to the same addresses and ports (and authority/unique id for v2).
// Seeds: tests/data/corpus/cases.
#include "tls/proxy_header.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

namespace {

using namespace linesman::tls;

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

bool same_endpoint(const proxy_endpoint& a, const proxy_endpoint& b) {
  return a.port == b.port && std::ranges::equal(a.address(), b.address());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  proxy_header h;
  const proxy_status st = parse_proxy_header(in, h);
  if (st != proxy_status::complete) {
    // Not final yet, or final and not a header: a prefix is incomplete or says the same.
    if (size > 0) {
      proxy_header p;
      const proxy_status ps = parse_proxy_header(in.first(size - 1), p);
      check(ps == proxy_status::incomplete || ps == st);
    }
    return 0;
  }
  check(h.header_len > 0 && h.header_len <= size);
  for (std::size_t cut : {h.header_len - 1, h.header_len / 2}) {
    proxy_header p;
    check(parse_proxy_header(in.first(cut), p) == proxy_status::incomplete);
  }
  std::vector<std::uint8_t> longer(in.begin(), in.end());
  longer.insert(longer.end(), {0x16, 0x03, 0x01, '\r', '\n'});
  proxy_header again;
  check(parse_proxy_header(longer, again) == proxy_status::complete);
  check(again.header_len == h.header_len);

  if (h.family != proxy_family::inet && h.family != proxy_family::inet6) {
    return 0;
  }
  if (h.command == proxy_command::local) {
    return 0;
  }
  std::array<std::uint8_t, 1024> buf{};
  const std::size_t n1 = write_proxy_v1(h.source, h.destination, buf);
  check(n1 > 0);
  proxy_header r1;
  check(parse_proxy_header(std::span(buf).first(n1), r1) == proxy_status::complete);
  check(same_endpoint(r1.source, h.source) && same_endpoint(r1.destination, h.destination));

  proxy_v2_tlvs tlvs;
  if (h.authority.size() <= 255) {
    tlvs.authority =
        std::string_view(reinterpret_cast<const char*>(h.authority.data()), h.authority.size());
  }
  tlvs.unique_id = h.unique_id;
  tlvs.crc32c = true;
  const std::size_t n2 = write_proxy_v2(h.source, h.destination, tlvs, buf);
  check(n2 > 0);
  proxy_header r2;
  check(parse_proxy_header(std::span(buf).first(n2), r2) == proxy_status::complete);
  check(same_endpoint(r2.source, h.source) && same_endpoint(r2.destination, h.destination));
  check(r2.crc32c_ok);
  check(std::ranges::equal(
      r2.authority,
      std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(tlvs.authority.data()),
                                    tlvs.authority.size())));
  check(std::ranges::equal(r2.unique_id, h.unique_id));
  return 0;
}
