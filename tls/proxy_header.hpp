// proxy_header: the PROXY protocol (HAProxy's spec, versions 1 and 2) - a parser for a header at
// the start of a stream, and writers for the header linesman sends upstream when configured to.
#pragma once

#include "tls/byte_reader.hpp"

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace linesman::tls {

enum class proxy_status : std::uint8_t {
  complete,    // a whole header; header_len_ bytes of the input belong to it
  incomplete,  // a proper prefix of a header (or of its signature): more bytes are needed
  malformed,   // it starts like a header but breaks the spec (too long, bad field, ...)
  not_proxy,   // the input does not start with either signature
};

enum class proxy_version : std::uint8_t { v1, v2 };
enum class proxy_command : std::uint8_t { local, proxy };  // v1 is always `proxy`
// proxy_family: v1 "TCP4" is inet, "TCP6" inet6, "UNKNOWN" unspec.
enum class proxy_family : std::uint8_t { unspec, inet, inet6, unix_socket };
enum class proxy_transport : std::uint8_t { unspec, stream, dgram };

// proxy_endpoint: an IP address in network byte order (4 or 16 bytes used) and a port.
struct proxy_endpoint {
  std::array<std::uint8_t, 16> addr{};
  std::uint8_t addr_len = 0;  // 4 (IPv4), 16 (IPv6), 0 (none)
  std::uint16_t port = 0;

  [[nodiscard]] std::span<const std::uint8_t> address() const {
    return std::span<const std::uint8_t>(addr).first(addr_len <= 16 ? addr_len : 16);
  }
};

// Version 2 TLV types (spec section 2.2.x) and the PP2_TYPE_SSL sub-TLVs.
inline constexpr std::uint8_t kPp2TypeAlpn = 0x01;
inline constexpr std::uint8_t kPp2TypeAuthority = 0x02;
inline constexpr std::uint8_t kPp2TypeCrc32c = 0x03;
inline constexpr std::uint8_t kPp2TypeNoop = 0x04;
inline constexpr std::uint8_t kPp2TypeUniqueId = 0x05;
inline constexpr std::uint8_t kPp2TypeSsl = 0x20;
inline constexpr std::uint8_t kPp2SubtypeSslVersion = 0x21;
inline constexpr std::uint8_t kPp2SubtypeSslCn = 0x22;
inline constexpr std::uint8_t kPp2SubtypeSslCipher = 0x23;
inline constexpr std::uint8_t kPp2SubtypeSslSigAlg = 0x24;
inline constexpr std::uint8_t kPp2SubtypeSslKeyAlg = 0x25;
inline constexpr std::uint8_t kPp2TypeNetns = 0x30;

inline constexpr std::size_t kProxyV1MaxLen = 107;  // "PROXY TCP6 <39> <39> 65535 65535\r\n"
inline constexpr std::size_t kProxyV2HeaderLen = 16;
inline constexpr std::size_t kProxyV2MaxUniqueId = 128;
inline constexpr std::array<std::uint8_t, 12> kProxyV2Signature = {
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

// proxy_tlv: one version-2 TLV; `value` borrows the parsed input.
struct proxy_tlv {
  std::uint8_t type = 0;
  std::span<const std::uint8_t> value;
};

// next_proxy_tlv: read the next TLV of a TLV block (proxy_header::tlvs_, or an SSL TLV's sub-TLVs
// after its 5 fixed bytes). False at the end of the block or when the next TLV is cut short.
[[nodiscard]] bool next_proxy_tlv(byte_reader& block, proxy_tlv& out);

// proxy_ssl_info: the PP2_TYPE_SSL TLV: | client u8 | verify u32 | sub-TLVs |.
struct proxy_ssl_info {
  bool present = false;
  std::uint8_t client = 0;   // PP2_CLIENT_SSL 0x01, _CERT_CONN 0x02, _CERT_SESS 0x04
  std::uint32_t verify = 0;  // 0 when the client certificate verified
  std::span<const std::uint8_t> version, cn, cipher, sig_alg, key_alg;  // empty when absent
};

// proxy_header: a parsed header. Spans borrow the input given to parse_proxy_header.
struct proxy_header {
  proxy_version version = proxy_version::v1;
  proxy_command command = proxy_command::proxy;
  proxy_family family = proxy_family::unspec;
  proxy_transport transport = proxy_transport::unspec;
  proxy_endpoint source;                                        // inet/inet6 only
  proxy_endpoint destination;                                   // inet/inet6 only
  std::span<const std::uint8_t> unix_source, unix_destination;  // 108 bytes each, NUL padded
  std::size_t header_len = 0;  // bytes of the input the header takes (v1: including CRLF)

  // Version 2 only. tlvs: the whole TLV block, walk it with next_proxy_tlv. The well-known
  // TLVs are also picked out (first occurrence; empty spans when absent).
  std::span<const std::uint8_t> tlvs;
  std::span<const std::uint8_t> alpn, authority, unique_id, netns;
  bool has_crc32c = false;
  bool crc32c_ok = false;  // the CRC32C TLV matches the header (computed with it zeroed)
  proxy_ssl_info ssl;
};

// parse_proxy_header: read a PROXY header (v1 or v2) at the start of `in`, a possibly partial
// stream prefix. Bytes after the header are not looked at. Strict: v1 needs the single spaces,
// decimal ports without leading zeros (except "0"), valid IPv4/IPv6 text and CRLF within 107
// bytes; v2 needs version 2, a known command/family/transport, an address block as long as the
// family says, and well-formed TLVs. Pure; never reads outside `in`; no allocation.
proxy_status parse_proxy_header(std::span<const std::uint8_t> in, proxy_header& out);

// proxy_v2_tlvs: what write_proxy_v2 may add after the addresses.
struct proxy_v2_tlvs {
  std::string_view authority;  // PP2_TYPE_AUTHORITY (the client's SNI), omitted when empty
  std::span<const std::uint8_t> unique_id;  // PP2_TYPE_UNIQUE_ID, at most 128 bytes
  bool crc32c = false;                      // add a PP2_TYPE_CRC32C checksum over the whole header
};

// write_proxy_v1: "PROXY TCP4|TCP6 src dst sport dport\r\n" into `out`, or "PROXY UNKNOWN\r\n"
// when both endpoints have addr_len 0. Returns the bytes written, or 0 (nothing usable written)
// when the endpoints are of different or invalid families or `out` is too small (107 suffices).
std::size_t write_proxy_v1(const proxy_endpoint& source, const proxy_endpoint& destination,
                           std::span<std::uint8_t> out);

// write_proxy_v2: a binary header with command PROXY over TCP (or LOCAL with family UNSPEC when
// both endpoints have addr_len 0) and the given TLVs. Returns the bytes written, or 0 when the
// endpoints differ in family, a TLV is too long, or `out` is too small.
std::size_t write_proxy_v2(const proxy_endpoint& source, const proxy_endpoint& destination,
                           const proxy_v2_tlvs& tlvs, std::span<std::uint8_t> out);

// format_proxy_endpoint: "1.2.3.4:80" or "[2001:db8::1]:443" into `out` (RFC 5952 text, at most
// 48 characters); returns the characters written, 0 when `out` is too small or no address.
std::size_t format_proxy_endpoint(const proxy_endpoint& ep, std::span<char> out);

// crc32c: CRC-32C (Castagnoli) of `bytes`, as the v2 CRC32C TLV carries it.
std::uint32_t crc32c(std::span<const std::uint8_t> bytes);

const char* proxy_status_name(proxy_status s);

}  // namespace linesman::tls
