// proxy_protocol: the PROXY protocol (v1 text, v2 binary) as the connection uses it: reading a
// header from the client side without consuming a byte past it, describing it for the record,
// checking it against the listener's settings, and building the header linesman writes upstream.
// The wire parsing itself is tls/proxy_header.hpp (pure, fuzzed); this file adds the record's
// view and the policy.
#pragma once

#include "proxy/access_record.hpp"
#include "proxy/config.hpp"
#include "tls/proxy_header.hpp"

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace linesman::proxy {

// proxy_header_want: how many more bytes the next read may take so that it never reads past the
// header (`so_far` is everything read so far). v1: one byte at a time after the 12 that both
// signatures share; v2: up to the length its fixed part gives. Always at least 1.
std::size_t proxy_header_want(std::span<const std::uint8_t> so_far);

// describe_proxy_header: the record's view of a parsed header (addresses, TLVs by name).
proxy_protocol_value describe_proxy_header(const tls::proxy_header& h);

// proxy_header_rejection: why the listener refuses a complete header `h` from `client`
// ("version_mismatch", "untrusted_source"), or nullptr when it is accepted.
const char* proxy_header_rejection(const proxy_protocol_config& pp, const tls::proxy_header& h,
                                   const endpoint_value& client);

// build_proxy_header: the header to write upstream, version `version` (1 or 2), for a client
// `client` that reached us at `local` (or the addresses a received header named), with the SNI
// as v2 authority and the connection id as v2 unique id. Writes into `out`; returns its length,
// 0 when it cannot be built. `desc` gets what was sent, for the record.
std::size_t build_proxy_header(int version, const access_record& r, std::span<std::uint8_t> out,
                               proxy_out_value& desc);

}  // namespace linesman::proxy
