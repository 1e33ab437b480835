// observation: what linesman saw of each side's first flight, as plain values shaped exactly like
// the access-log schema's `client_first`/`upstream_first`, `tls` and `server_tls` objects
// (tests/data/access-log.schema.json). The connection fills them from tls/ parse results (see
// observe_client.hpp, observe_server.hpp); `linesman inspect` serializes them with to_json, the
// access log with proxy/record_linesman.cpp, and record_format_test checks that the two agree
// byte for byte.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::proxy {

// first_flight_obs: schema `$defs/first_flight`.
struct first_flight_obs {
  std::string protocol = "none";  // tls, http1, postgres, ... (tls::protocol_name)
  std::string summary;            // one printable line, at most 120 characters; omitted if empty
  std::uint64_t bytes = 0;        // bytes of the first flight seen (bounded by the peek buffer)
};

// group_list: named-group code points (supported_groups, key_share) in wire order, kept as codes
// so a record holds no strings for them: up to kMax, then `overflow`. Named (IANA names, "grease",
// "0x%04x": tls::group_name) only when the record is written.
struct group_list {
  static constexpr std::size_t kMax = 16;
  std::array<std::uint16_t, kMax> codes{};
  std::uint8_t count = 0;
  bool overflow = false;  // the hello listed more than kMax; the first kMax are kept

  void push(std::uint16_t code);
  [[nodiscard]] std::span<const std::uint16_t> view() const { return {codes.data(), count}; }
};

// group_names: the names of `g`, in order.
std::vector<std::string> group_names(const group_list& g);

// tls_obs: schema `tls`, present when the client's first flight was a ClientHello.
struct tls_obs {
  std::optional<std::string> sni;               // escaped: non-printable bytes as \xNN, never raw
  std::vector<std::string> alpn;                // escaped like sni
  std::string legacy_version;                   // "1.2"
  std::vector<std::string> supported_versions;  // GREASE removed, wire order: ["1.3", "1.2"]
  int cipher_count = 0;
  std::string ja3;  // MD5 hex
  std::string ja4;
  bool ech = false;               // encrypted_client_hello extension present (real or GREASE)
  std::uint32_t hello_bytes = 0;  // handshake message incl. its 4-byte header
  int hello_records = 0;
  int hello_reads = 0;  // socket reads until complete (0 when read from a file)
  bool complete = false;
  std::int16_t ech_config_id = -1;  // the outer ECH config_id; -1 (null) without one
  group_list supported_groups;      // supported_groups extension, wire order, GREASE included
  group_list key_share_groups;      // groups of the client's key shares, wire order
  // sni_read: the 1-based socket read in which the server_name extension became complete; 0 (null)
  // without SNI or when read from a file.
  int sni_read = 0;

  // pq_key_share: a key share uses a post-quantum group (tls::is_post_quantum_group).
  [[nodiscard]] bool pq_key_share() const;
};

struct alert_obs {
  std::string level;        // "warning" | "fatal"
  std::string description;  // RFC 8446 name, e.g. "handshake_failure"
  int code = 0;
};

struct certificate_obs {
  std::string subject;  // RFC 2253 form, e.g. "CN=TRAEFIK DEFAULT CERT"
  std::string issuer;
  std::vector<std::string> san;  // DNS and IP subjectAltNames
};

// server_tls_obs: schema `server_tls`.
struct server_tls_obs {
  std::string version;  // negotiated: supported_versions extension if present, else legacy
  std::string cipher;   // IANA name, e.g. "TLS_AES_256_GCM_SHA384"
  std::optional<alert_obs> alert;
  std::optional<certificate_obs> certificate;  // TLS 1.2 and older only (sent in clear)
};

void to_json(nlohmann::json& j, const first_flight_obs& v);
void to_json(nlohmann::json& j, const tls_obs& v);
void to_json(nlohmann::json& j, const alert_obs& v);
void to_json(nlohmann::json& j, const certificate_obs& v);
void to_json(nlohmann::json& j, const server_tls_obs& v);

}  // namespace linesman::proxy
