// inspect: what `linesman inspect` says about one file of raw first-flight bytes.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include <nlohmann/json.hpp>

namespace linesman::tools {

// inspect_json: the JSON line for `bytes` read from `path`:
//   {"file", "status", "client_first", "tls", "hello"}
// `status` is the tls::hello_status name; `client_first` is the access-log first_flight object
// (from tls::detect_first_flight); `tls` is the access-log tls object, present when the bytes are
// a ClientHello or a prefix of one (status complete, incomplete or too_large); `hello` carries
// what the access log does not (tls_offset, wire_bytes, record_version, format, extensions,
// ja3_full, ja4_r, ja4_o, ja4_ro), present when the hello is complete. Never throws on content.
nlohmann::ordered_json inspect_json(const std::string& path, std::span<const std::uint8_t> bytes);

// inspect_text: the same as a readable multi-line block (ends with a newline).
std::string inspect_text(const nlohmann::ordered_json& line);

}  // namespace linesman::tools
