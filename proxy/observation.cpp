#include "proxy/observation.hpp"

#include "tls/names.hpp"

#include <algorithm>

namespace linesman::proxy {

void group_list::push(std::uint16_t code) {
  if (count == kMax) {
    overflow = true;
    return;
  }
  codes[count++] = code;
}

std::vector<std::string> group_names(const group_list& g) {
  std::vector<std::string> out;
  out.reserve(g.count);
  for (std::uint16_t code : g.view()) {
    out.emplace_back(tls::group_name(code).view());
  }
  return out;
}

bool tls_obs::pq_key_share() const {
  const auto shares = key_share_groups.view();
  return std::any_of(shares.begin(), shares.end(), tls::is_post_quantum_group);
}

void to_json(nlohmann::json& j, const first_flight_obs& v) {
  j = nlohmann::json{{"protocol", v.protocol}, {"bytes", v.bytes}};
  if (!v.summary.empty()) {
    j["summary"] = v.summary;
  }
}

void to_json(nlohmann::json& j, const tls_obs& v) {
  j = nlohmann::json{
      {"sni", v.sni ? nlohmann::json(*v.sni) : nlohmann::json(nullptr)},
      {"alpn", v.alpn},
      {"legacy_version", v.legacy_version},
      {"supported_versions", v.supported_versions},
      {"cipher_count", v.cipher_count},
      {"ja3", v.ja3},
      {"ja4", v.ja4},
      {"ech", v.ech},
      {"ech_config_id",
       v.ech_config_id >= 0 ? nlohmann::json(v.ech_config_id) : nlohmann::json(nullptr)},
      {"supported_groups", group_names(v.supported_groups)},
      {"key_share_groups", group_names(v.key_share_groups)},
      {"pq_key_share", v.pq_key_share()},
      {"hello_bytes", v.hello_bytes},
      {"hello_records", v.hello_records},
      {"hello_reads", v.hello_reads},
      {"complete", v.complete},
  };
  // Read-based: null when the hello was read from a file (inspect) or carried no SNI.
  j["sni_read"] = v.sni_read > 0 ? nlohmann::json(v.sni_read) : nlohmann::json(nullptr);
  if (v.supported_groups.overflow || v.key_share_groups.overflow) {
    j["groups_truncated"] = true;
  }
}

void to_json(nlohmann::json& j, const alert_obs& v) {
  j = nlohmann::json{{"level", v.level}, {"description", v.description}, {"code", v.code}};
}

void to_json(nlohmann::json& j, const certificate_obs& v) {
  j = nlohmann::json{{"subject", v.subject}, {"issuer", v.issuer}};
  if (!v.san.empty()) {
    j["san"] = v.san;
  }
}

void to_json(nlohmann::json& j, const server_tls_obs& v) {
  j = nlohmann::json::object();
  if (!v.version.empty()) {
    j["version"] = v.version;
  }
  if (!v.cipher.empty()) {
    j["cipher"] = v.cipher;
  }
  if (v.alert) {
    j["alert"] = *v.alert;
  }
  if (v.certificate) {
    j["certificate"] = *v.certificate;
  }
}

}  // namespace linesman::proxy
