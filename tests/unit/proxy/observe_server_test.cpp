#include "proxy/observe_server.hpp"

#include <array>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace linesman::proxy {
namespace {

std::vector<std::uint8_t> self_signed_der() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* c = X509_new();
  X509_set_version(c, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(c), 1);
  X509_gmtime_adj(X509_getm_notBefore(c), 0);
  X509_gmtime_adj(X509_getm_notAfter(c), 3600);
  X509_NAME* subject = X509_get_subject_name(c);
  X509_NAME_add_entry_by_txt(subject, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Example, Inc."), -1, -1, 0);
  X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("app.example.test"), -1, -1, 0);
  X509_NAME* issuer = X509_NAME_new();
  X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("Test CA"), -1, -1, 0);
  X509_set_issuer_name(c, issuer);
  X509_NAME_free(issuer);
  X509V3_CTX v3;
  X509V3_set_ctx_nodb(&v3);
  X509V3_set_ctx(&v3, c, c, nullptr, nullptr, 0);
  X509_EXTENSION* ext =
      X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, "DNS:app.example.test,IP:10.0.0.1");
  X509_add_ext(c, ext, -1);
  X509_EXTENSION_free(ext);
  X509_set_pubkey(c, key);
  X509_sign(c, key, EVP_sha256());
  unsigned char* buf = nullptr;
  const int len = i2d_X509(c, &buf);
  std::vector<std::uint8_t> der(buf, buf + len);
  OPENSSL_free(buf);
  X509_free(c);
  EVP_PKEY_free(key);
  return der;
}

TEST(ObserveServer, Tls12FlightWithCertificate) {
  const std::vector<std::uint8_t> der = self_signed_der();
  tls::server_flight f;
  f.has_server_hello = true;
  f.legacy_version = 0x0303;
  f.cipher_suite = 0xc02f;
  f.leaf_certificate = der;
  const server_tls_obs obs = observe_server_flight(f, tls::server_status::complete);
  EXPECT_EQ(obs.version_name().view(), "1.2");
  EXPECT_EQ(obs.cipher_name().view(), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  EXPECT_FALSE(obs.alert.has_value());
  ASSERT_TRUE(obs.certificate.has_value());
  EXPECT_EQ(obs.certificate->subject, "CN=app.example.test,O=Example\\, Inc.");
  EXPECT_EQ(obs.certificate->issuer, "CN=Test CA");
  EXPECT_EQ(obs.certificate->san, (std::vector<std::string>{"app.example.test", "10.0.0.1"}));
  const nlohmann::json j = obs;
  EXPECT_EQ(j["certificate"]["subject"], "CN=app.example.test,O=Example\\, Inc.");
  EXPECT_EQ(j["version"], "1.2");
}

TEST(ObserveServer, Tls13AndAlertAndUnknownCodes) {
  tls::server_flight f;
  f.has_server_hello = true;
  f.legacy_version = 0x0303;
  f.selected_version = 0x0304;
  f.cipher_suite = 0x1302;
  server_tls_obs obs = observe_server_flight(f, tls::server_status::complete);
  EXPECT_EQ(obs.version, tls::kTls13);
  EXPECT_EQ(obs.version_name().view(), "1.3");
  EXPECT_EQ(obs.cipher, 0x1302);
  EXPECT_EQ(obs.cipher_name().view(), "TLS_AES_256_GCM_SHA384");
  EXPECT_FALSE(obs.certificate.has_value());

  tls::server_flight a;
  a.alert = tls::server_alert{2, 112};
  obs = observe_server_flight(a, tls::server_status::complete);
  EXPECT_FALSE(obs.version.has_value());
  EXPECT_FALSE(obs.cipher.has_value());
  EXPECT_EQ(obs.version_name().view(), "");
  ASSERT_TRUE(obs.alert.has_value());
  EXPECT_EQ(obs.alert->level_name().view(), "fatal");
  EXPECT_EQ(obs.alert->description().view(), "unrecognized_name");
  EXPECT_EQ(obs.alert->code, 112);
  nlohmann::json j = obs;
  EXPECT_FALSE(j.contains("version"));
  EXPECT_FALSE(j.contains("cipher"));
  EXPECT_EQ(
      j["alert"],
      nlohmann::json({{"level", "fatal"}, {"description", "unrecognized_name"}, {"code", 112}}));

  // Codes no table names are written in hex, as they were when the record kept names.
  a.alert = tls::server_alert{7, 0xee};
  obs = observe_server_flight(a, tls::server_status::complete);
  j = obs;
  EXPECT_EQ(j["alert"],
            nlohmann::json({{"level", "0x07"}, {"description", "0xee"}, {"code", 238}}));
  f.cipher_suite = 0xeeee;
  f.selected_version = 0x7f17;
  obs = observe_server_flight(f, tls::server_status::complete);
  EXPECT_EQ(obs.cipher_name().view(), "0xeeee");
  EXPECT_EQ(obs.version_name().view(), "0x7f17");
  j = obs;
  EXPECT_EQ(j["cipher"], "0xeeee");
  EXPECT_EQ(j["version"], "0x7f17");
  // A ServerHello choosing TLS_NULL_WITH_NULL_NULL (code 0) still has a cipher.
  f.cipher_suite = 0x0000;
  j = observe_server_flight(f, tls::server_status::complete);
  EXPECT_EQ(j["cipher"], "TLS_NULL_WITH_NULL_NULL");

  // A leaf that is not a certificate is left out, not guessed at.
  const std::array<std::uint8_t, 3> junk = {0x30, 0x01, 0x00};
  f.leaf_certificate = junk;
  obs = observe_server_flight(f, tls::server_status::complete);
  EXPECT_FALSE(obs.certificate.has_value());
}

TEST(ObserveServer, FirstFlight) {
  const std::string line = "HTTP/1.1 400 Bad Request\r\n\r\n";
  const std::span<const std::uint8_t> in(reinterpret_cast<const std::uint8_t*>(line.data()),
                                         line.size());
  const tls::detection d = tls::detect_first_flight(in, tls::direction::server_to_client);
  const first_flight_obs obs = observe_first_flight(d, in.size());
  EXPECT_EQ(obs.protocol, "http1");
  EXPECT_EQ(obs.summary, "HTTP/1.1 400 Bad Request");
  EXPECT_EQ(obs.bytes, line.size());
  const first_flight_obs none = observe_first_flight(tls::detection{}, 0);
  EXPECT_EQ(none.protocol, "none");
  EXPECT_TRUE(none.summary.empty());
}

}  // namespace
}  // namespace linesman::proxy
