// firefox_hello: a real post-quantum-sized ClientHello for the demo's one-segment router scenario.
#pragma once

#include <cstdint>
#include <span>

namespace linesman::tools::demo {

// kFirefoxSni: the SNI of firefox_hello().
inline constexpr const char* kFirefoxSni = "www.firefox.test";

// firefox_hello: Firefox ESR's 1,899-byte hello (static storage, valid for the whole program).
std::span<const std::uint8_t> firefox_hello();

}  // namespace linesman::tools::demo
