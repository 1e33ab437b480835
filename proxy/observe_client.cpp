#include "proxy/observe_client.hpp"

#include "tls/fingerprint.hpp"
#include "tls/hex.hpp"
#include "tls/names.hpp"

namespace linesman::proxy {

std::string escape_bytes(std::span<const std::uint8_t> bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::uint8_t c : bytes) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c <= 0x7e) {
      out.push_back(static_cast<char>(c));
    } else {
      tls::append_hex_escape(out, c);
    }
  }
  return out;
}

tls_obs observe_client_hello(const tls::client_hello& hello, tls::hello_status status,
                             int hello_reads) {
  tls_obs obs;
  obs.hello_records = hello.records;
  obs.hello_reads = hello_reads;
  obs.complete = status == tls::hello_status::complete;
  if (!obs.complete) {
    return obs;
  }
  if (!hello.sni.empty()) {
    obs.sni = escape_bytes(hello.sni);
  }
  for (std::span<const std::uint8_t> name : hello.alpn) {
    obs.alpn.push_back(escape_bytes(name));
  }
  obs.legacy_version = hello.legacy_version;
  for (std::uint16_t v : hello.supported_versions) {
    if (!tls::is_grease(v)) {
      obs.supported_versions.push(v);
    }
  }
  obs.cipher_count =
      static_cast<int>(hello.format == tls::hello_format::sslv2 ? hello.sslv2_cipher_specs.size()
                                                                : hello.cipher_suites.size());
  const tls::hello_fingerprints prints = tls::fingerprints(hello);
  obs.ja3.assign(prints.ja3_text());
  obs.ja4.assign(prints.ja4_text());
  obs.ech = hello.ech_present;
  obs.ech_config_id = hello.ech_config_id;
  for (std::uint16_t g : hello.supported_groups) {
    obs.supported_groups.push(g);
  }
  for (const tls::key_share_entry& share : hello.key_shares) {
    obs.key_share_groups.push(share.group);
  }
  obs.hello_bytes = static_cast<std::uint32_t>(hello.handshake_len);
  return obs;
}

}  // namespace linesman::proxy
