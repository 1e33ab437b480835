#include "proxy/observation.hpp"

namespace linesman::proxy {

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
      {"hello_bytes", v.hello_bytes},
      {"hello_records", v.hello_records},
      {"hello_reads", v.hello_reads},
      {"complete", v.complete},
  };
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
