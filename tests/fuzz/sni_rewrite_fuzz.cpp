// sni_rewrite_fuzz: libFuzzer target for capture::rewrite_sni (`linesman replay --sni`), which
// walks a ClientHello taken from an untrusted capture file. Links linesman_capture_parsers.
// Property: whenever the rewrite succeeds, tls::parse_client_hello reads the result as a
// complete hello carrying exactly the new name (or no SNI when the name is empty).
// Seeds: tests/data/corpus/cases.
#include "capture/hello_rewrite.hpp"
#include "tls/client_hello.hpp"

#include <cstdlib>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> in(data, size);
  static const std::string kNames[] = {"", "a", "replaced.example.test", std::string(255, 'x')};
  for (const std::string& name : kNames) {
    std::vector<std::uint8_t> out;
    std::string error;
    if (!linesman::capture::rewrite_sni(in, name, out, error)) {
      if (error.empty()) {
        std::abort();
      }
      continue;
    }
    std::vector<std::uint8_t> scratch(linesman::tls::kScratchLen);
    linesman::tls::client_hello h;
    auto st = linesman::tls::parse_client_hello(out, scratch, h);
    if (st == linesman::tls::hello_status::too_large) {
      continue;  // a longer name may push a hello at the limit over it
    }
    if (st != linesman::tls::hello_status::complete) {
      std::abort();
    }
    std::string got(h.sni.begin(), h.sni.end());
    if (got != name || h.sni_present == name.empty()) {
      std::abort();
    }
  }
  return 0;
}
