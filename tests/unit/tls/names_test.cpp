#include "tls/names.hpp"

#include <set>
#include <string>

#include <gtest/gtest.h>
#include <openssl/ssl.h>

namespace linesman::tls {
namespace {

TEST(Names, Versions) {
  EXPECT_EQ(version_name(0x0304).view(), "1.3");
  EXPECT_EQ(version_name(0x0303).view(), "1.2");
  EXPECT_EQ(version_name(0x0302).view(), "1.1");
  EXPECT_EQ(version_name(0x0301).view(), "1.0");
  EXPECT_EQ(version_name(0x0300).view(), "SSL 3.0");
  EXPECT_TRUE(version_name(0x0303).known());
  EXPECT_EQ(version_name(0x0a0a).view(), "0x0a0a");
  EXPECT_FALSE(version_name(0x0a0a).known());
  EXPECT_EQ(version_name(0x7f1c).view(), "0x7f1c");
  EXPECT_EQ(version_name(0xfeff).view(), "0xfeff");
  EXPECT_EQ(find_version_name(0x0200), "");
}

TEST(Names, GreaseIsExactlyTheSixteenRfc8701Values) {
  std::set<unsigned> grease;
  for (unsigned v = 0; v <= 0xffff; ++v) {
    if (is_grease(static_cast<std::uint16_t>(v))) {
      grease.insert(v);
    }
  }
  std::set<unsigned> want;
  for (unsigned i = 0; i < 16; ++i) {
    want.insert((i << 12U) | 0x0a00U | (i << 4U) | 0x0aU);
  }
  EXPECT_EQ(grease, want);
  EXPECT_TRUE(is_grease(0x0a0a));
  EXPECT_TRUE(is_grease(0xfafa));
  EXPECT_FALSE(is_grease(0x0a1a));
  EXPECT_FALSE(is_grease(0x1301));
}

TEST(Names, CipherSuites) {
  EXPECT_EQ(cipher_suite_name(0x1301).view(), "TLS_AES_128_GCM_SHA256");
  EXPECT_EQ(cipher_suite_name(0x1302).view(), "TLS_AES_256_GCM_SHA384");
  EXPECT_EQ(cipher_suite_name(0x1303).view(), "TLS_CHACHA20_POLY1305_SHA256");
  EXPECT_EQ(cipher_suite_name(0x1304).view(), "TLS_AES_128_CCM_SHA256");
  EXPECT_EQ(cipher_suite_name(0x1305).view(), "TLS_AES_128_CCM_8_SHA256");
  EXPECT_EQ(cipher_suite_name(0xc02f).view(), "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256");
  EXPECT_EQ(cipher_suite_name(0xcca9).view(), "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
  EXPECT_EQ(cipher_suite_name(0x00ff).view(), "TLS_EMPTY_RENEGOTIATION_INFO_SCSV");
  EXPECT_EQ(cipher_suite_name(0x5600).view(), "TLS_FALLBACK_SCSV");
  EXPECT_EQ(cipher_suite_name(0x2a2a).view(), "0x2a2a");
  EXPECT_EQ(cipher_suite_name(0xabcd).view(), "0xabcd");
}

// Every suite OpenSSL 3 knows by an IANA name must get that same name from our table when we
// know it, and every suite a default OpenSSL client offers must be in the table.
TEST(Names, AgreeWithOpenSslStandardNames) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_method());
  ASSERT_NE(ctx, nullptr);
  ASSERT_EQ(SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0"), 1);
  SSL* ssl = SSL_new(ctx);
  STACK_OF(SSL_CIPHER)* all = SSL_get_ciphers(ssl);
  int known = 0;
  for (int i = 0; i < sk_SSL_CIPHER_num(all); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(all, i);
    const auto id = static_cast<std::uint16_t>(SSL_CIPHER_get_protocol_id(c));
    const std::string_view ours = find_cipher_suite_name(id);
    if (!ours.empty()) {
      EXPECT_EQ(ours, SSL_CIPHER_standard_name(c)) << std::hex << id;
      ++known;
    }
  }
  EXPECT_GT(known, 40);
  SSL_free(ssl);
  SSL_CTX_free(ctx);

  SSL_CTX* def = SSL_CTX_new(TLS_client_method());
  SSL* client = SSL_new(def);
  STACK_OF(SSL_CIPHER)* offered = SSL_get1_supported_ciphers(client);
  for (int i = 0; i < sk_SSL_CIPHER_num(offered); ++i) {
    const SSL_CIPHER* c = sk_SSL_CIPHER_value(offered, i);
    const auto id = static_cast<std::uint16_t>(SSL_CIPHER_get_protocol_id(c));
    EXPECT_TRUE(cipher_suite_name(id).known()) << SSL_CIPHER_standard_name(c);
  }
  sk_SSL_CIPHER_free(offered);
  SSL_free(client);
  SSL_CTX_free(def);
}

TEST(Names, Alerts) {
  EXPECT_EQ(alert_level_name(1).view(), "warning");
  EXPECT_EQ(alert_level_name(2).view(), "fatal");
  EXPECT_EQ(alert_level_name(3).view(), "0x03");
  EXPECT_EQ(alert_description_name(0).view(), "close_notify");
  EXPECT_EQ(alert_description_name(40).view(), "handshake_failure");
  EXPECT_EQ(alert_description_name(42).view(), "bad_certificate");
  EXPECT_EQ(alert_description_name(48).view(), "unknown_ca");
  EXPECT_EQ(alert_description_name(70).view(), "protocol_version");
  EXPECT_EQ(alert_description_name(80).view(), "internal_error");
  EXPECT_EQ(alert_description_name(86).view(), "inappropriate_fallback");
  EXPECT_EQ(alert_description_name(112).view(), "unrecognized_name");
  EXPECT_EQ(alert_description_name(116).view(), "certificate_required");
  EXPECT_EQ(alert_description_name(120).view(), "no_application_protocol");
  EXPECT_EQ(alert_description_name(21).view(), "decryption_failed");
  EXPECT_EQ(alert_description_name(100).view(), "no_renegotiation");
  EXPECT_EQ(alert_description_name(255).view(), "0xff");
  EXPECT_EQ(alert_description_name(7).view(), "0x07");
}

// OpenSSL's own short alert names must match ours for every code it knows by name.
TEST(Names, AlertNamesAgreeWithOpenSsl) {
  int checked = 0;
  for (int code = 0; code < 256; ++code) {
    const std::string_view ours = find_alert_description_name(static_cast<std::uint8_t>(code));
    const std::string theirs = SSL_alert_desc_string_long((2 << 8) | code);
    if (!ours.empty() && theirs != "unknown") {
      std::string normalized;
      for (char c : theirs) {
        normalized.push_back(c == ' ' ? '_' : c);
      }
      // OpenSSL says "decode error"/"bad certificate"; a few of its names differ in wording.
      if (normalized == ours) {
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 15);
}

TEST(Names, GroupsByIanaName) {
  EXPECT_EQ(group_name(0x001d).view(), "x25519");
  EXPECT_EQ(group_name(0x0017).view(), "secp256r1");
  EXPECT_EQ(group_name(0x0018).view(), "secp384r1");
  EXPECT_EQ(group_name(0x001e).view(), "x448");
  EXPECT_EQ(group_name(0x0100).view(), "ffdhe2048");
  EXPECT_EQ(group_name(0x11ec).view(), "X25519MLKEM768");
  EXPECT_EQ(group_name(0x11eb).view(), "SecP256r1MLKEM768");
  EXPECT_EQ(group_name(0x11ed).view(), "SecP384r1MLKEM1024");
  EXPECT_EQ(group_name(0x6399).view(), "X25519Kyber768Draft00");
  EXPECT_EQ(group_name(0x0201).view(), "MLKEM768");
  EXPECT_TRUE(group_name(0x001d).known());
}

TEST(Names, GroupGreaseAndUnknown) {
  for (unsigned hi = 0; hi < 16; ++hi) {
    const auto g = static_cast<std::uint16_t>(((hi << 4U) | 0x0aU) * 0x0101U);
    EXPECT_EQ(group_name(g).view(), "grease") << g;
  }
  EXPECT_EQ(group_name(0x1234).view(), "0x1234");
  EXPECT_EQ(group_name(0xfe00).view(), "0xfe00");
  EXPECT_FALSE(group_name(0x1234).known());
  EXPECT_EQ(find_group_name(0x2a2a), "");
}

TEST(Names, PostQuantumGroups) {
  for (std::uint16_t g : {0x11eb, 0x11ec, 0x11ed, 0x11ee, 0x6399, 0x639a, 0x0200, 0x0201, 0x0202}) {
    EXPECT_TRUE(is_post_quantum_group(g)) << g;
    EXPECT_FALSE(find_group_name(g).empty()) << g;
  }
  for (std::uint16_t g : {0x001d, 0x0017, 0x0018, 0x001e, 0x0100, 0x2a2a, 0x0000, 0xffff}) {
    EXPECT_FALSE(is_post_quantum_group(g)) << g;
  }
}

}  // namespace
}  // namespace linesman::tls
