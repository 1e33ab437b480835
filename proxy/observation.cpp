#include "proxy/observation.hpp"

#include "tls/names.hpp"

#include <algorithm>

namespace linesman::proxy {

namespace {

template <std::size_t N>
std::vector<std::string> names(const code_list<N>& list, tls::code_name (*name)(std::uint16_t)) {
  std::vector<std::string> out;
  out.reserve(list.count);
  for (std::uint16_t code : list.view()) {
    out.emplace_back(name(code).view());
  }
  return out;
}

}  // namespace

std::vector<std::string> group_names(const group_list& g) { return names(g, tls::group_name); }

std::vector<std::string> version_names(const version_list& v) {
  return names(v, tls::version_name);
}

tls::code_name tls_obs::legacy_version_name() const {
  return legacy_version ? tls::version_name(*legacy_version) : tls::code_name::named({});
}

bool tls_obs::pq_key_share() const {
  const auto shares = key_share_groups.view();
  return std::any_of(shares.begin(), shares.end(), tls::is_post_quantum_group);
}

tls::code_name server_tls_obs::version_name() const {
  return version ? tls::version_name(*version) : tls::code_name::named({});
}

tls::code_name server_tls_obs::cipher_name() const {
  return cipher ? tls::cipher_suite_name(*cipher) : tls::code_name::named({});
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
      {"legacy_version", v.legacy_version_name().view()},
      {"supported_versions", version_names(v.supported_versions)},
      {"cipher_count", v.cipher_count},
      {"ja3", v.ja3.view()},
      {"ja4", v.ja4.view()},
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
  if (v.groups_truncated()) {
    j["groups_truncated"] = true;
  }
  if (v.versions_truncated()) {
    j["versions_truncated"] = true;
  }
}

void to_json(nlohmann::json& j, const alert_obs& v) {
  j = nlohmann::json{
      {"level", v.level_name().view()}, {"description", v.description().view()}, {"code", v.code}};
}

void to_json(nlohmann::json& j, const certificate_obs& v) {
  j = nlohmann::json{{"subject", v.subject}, {"issuer", v.issuer}};
  if (!v.san.empty()) {
    j["san"] = v.san;
  }
}

void to_json(nlohmann::json& j, const server_tls_obs& v) {
  j = nlohmann::json::object();
  if (v.version) {
    j["version"] = v.version_name().view();
  }
  if (v.cipher) {
    j["cipher"] = v.cipher_name().view();
  }
  if (v.alert) {
    j["alert"] = *v.alert;
  }
  if (v.certificate) {
    j["certificate"] = *v.certificate;
  }
}

}  // namespace linesman::proxy
