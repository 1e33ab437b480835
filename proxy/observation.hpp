// observation: what linesman saw of each side's first flight, as plain values shaped exactly like
// the access-log schema's `client_first`/`upstream_first`, `tls` and `server_tls` objects
// (tests/data/access-log.schema.json). The connection fills them from tls/ parse results (see
// observe_client.hpp, observe_server.hpp); `linesman inspect` serializes them with to_json, the
// access log with proxy/record_linesman.cpp, and record_format_test checks that the two agree
// byte for byte.
#pragma once

#include "proxy/boxed.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::proxy {

// first_flight_obs: schema `$defs/first_flight`.
struct first_flight_obs {
  std::string protocol = "none";  // tls, http1, postgres, ... (tls::protocol_name)
  std::string summary;            // one printable line, at most 120 characters; omitted if empty
  std::uint64_t bytes = 0;        // bytes of the first flight seen (bounded by the peek buffer)
};

// code_list: 16-bit code points in wire order, kept as codes so a record holds no strings for
// them: up to N, then `overflow`. Named (tls/names.hpp) only when the record is written.
template <std::size_t N>
struct code_list {
  static_assert(N <= 255, "count is one byte");
  static constexpr std::size_t kMax = N;
  std::array<std::uint16_t, N> codes{};
  std::uint8_t count = 0;
  bool overflow = false;  // the hello listed more than kMax; the first kMax are kept

  void push(std::uint16_t code) {
    if (count == kMax) {
      overflow = true;
      return;
    }
    codes[count++] = code;
  }
  [[nodiscard]] std::span<const std::uint16_t> view() const { return {codes.data(), count}; }
};

// group_list: named-group code points (supported_groups, key_share), GREASE included; named
// (IANA names, "grease", "0x%04x") by tls::group_name.
using group_list = code_list<16>;
// version_list: supported_versions code points, GREASE removed; named ("1.3", "0x%04x") by
// tls::version_name. Real hellos list at most four (tests/data/corpus); eight leave room for
// drafts and DTLS without holding the 127 a hostile hello may list.
using version_list = code_list<8>;

// group_names / version_names: the names of the list's codes, in order.
std::vector<std::string> group_names(const group_list& g);
std::vector<std::string> version_names(const version_list& v);

// fixed_text: a short text of at most N characters kept inline (no heap), for the fingerprints,
// whose length tls/fingerprint.hpp fixes. A longer text cannot come from tls/ and is cut at N.
template <std::size_t N>
struct fixed_text {
  static_assert(N <= 255, "size is one byte");
  std::array<char, N> chars{};
  std::uint8_t size = 0;

  void assign(std::string_view s) {
    size = static_cast<std::uint8_t>(std::min(s.size(), N));
    std::copy_n(s.begin(), size, chars.begin());
  }
  [[nodiscard]] std::string_view view() const { return {chars.data(), size}; }
  [[nodiscard]] bool empty() const { return size == 0; }
};

// tls_obs: schema `tls`, present when the client's first flight was a ClientHello. What an idle
// connection keeps for its whole life: codes and fixed arrays, named when the record is written.
struct tls_obs {
  std::optional<std::string> sni;  // escaped: non-printable bytes as \xNN, never raw
  std::vector<std::string> alpn;   // escaped like sni
  int cipher_count = 0;
  std::uint32_t hello_bytes = 0;  // handshake message incl. its 4-byte header
  int hello_records = 0;
  int hello_reads = 0;  // socket reads until complete (0 when read from a file)
  // sni_read: the 1-based socket read in which the server_name extension became complete; 0 (null)
  // without SNI or when read from a file.
  int sni_read = 0;
  std::int16_t ech_config_id = -1;  // the outer ECH config_id; -1 (null) without one
  // legacy_version: the hello's legacy_version code; absent (written "") until it is complete.
  std::optional<std::uint16_t> legacy_version;
  version_list supported_versions;  // GREASE removed, wire order: 1.3, 1.2
  group_list supported_groups;      // supported_groups extension, wire order, GREASE included
  group_list key_share_groups;      // groups of the client's key shares, wire order
  fixed_text<tls::kJa3Size> ja3;    // MD5 hex; empty until complete
  fixed_text<tls::kJa4Size> ja4;
  bool ech = false;  // encrypted_client_hello extension present (real or GREASE)
  bool complete = false;

  // legacy_version_name: "1.2" (tls::version_name), "" while absent.
  [[nodiscard]] tls::code_name legacy_version_name() const;
  // pq_key_share: a key share uses a post-quantum group (tls::is_post_quantum_group).
  [[nodiscard]] bool pq_key_share() const;
  // groups_truncated / versions_truncated: a list overflowed (written as such, never silently).
  [[nodiscard]] bool groups_truncated() const {
    return supported_groups.overflow || key_share_groups.overflow;
  }
  [[nodiscard]] bool versions_truncated() const { return supported_versions.overflow; }
};

// alert_obs: schema `server_tls.alert`, as the two codes of the alert record.
struct alert_obs {
  std::uint8_t level = 0;  // 1 warning, 2 fatal
  std::uint8_t code = 0;   // the description code, e.g. 40

  // level_name: "warning" | "fatal" (tls::alert_level_name; "0x%02x" when unknown).
  [[nodiscard]] tls::code_name level_name() const { return tls::alert_level_name(level); }
  // description: the RFC 8446 name, e.g. "handshake_failure" (tls::alert_description_name;
  // "0x%02x" when unknown).
  [[nodiscard]] tls::code_name description() const { return tls::alert_description_name(code); }
};

struct certificate_obs {
  std::string subject;  // RFC 2253 form, e.g. "CN=TRAEFIK DEFAULT CERT"
  std::string issuer;
  std::vector<std::string> san;  // DNS and IP subjectAltNames
};

// server_tls_obs: schema `server_tls`. Codes, named when written; version and cipher are present
// together, once a ServerHello was read.
struct server_tls_obs {
  std::optional<std::uint16_t> version;  // negotiated: supported_versions if present, else legacy
  std::optional<std::uint16_t> cipher;   // cipher suite code, e.g. 0x1302
  std::optional<alert_obs> alert;
  boxed<certificate_obs> certificate;  // TLS 1.2 and older only (sent in clear); rare

  // version_name: "1.3" (tls::version_name; "0x%04x" when unknown), "" while absent.
  [[nodiscard]] tls::code_name version_name() const;
  // cipher_name: the IANA name, e.g. "TLS_AES_256_GCM_SHA384" (tls::cipher_suite_name; "0x%04x"
  // when unknown), "" while absent.
  [[nodiscard]] tls::code_name cipher_name() const;
};

void to_json(nlohmann::json& j, const first_flight_obs& v);
void to_json(nlohmann::json& j, const tls_obs& v);
void to_json(nlohmann::json& j, const alert_obs& v);
void to_json(nlohmann::json& j, const certificate_obs& v);
void to_json(nlohmann::json& j, const server_tls_obs& v);

}  // namespace linesman::proxy
