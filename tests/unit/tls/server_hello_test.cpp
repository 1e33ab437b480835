// Server first flights produced by real OpenSSL servers in memory (memory BIOs, no sockets),
// parsed by tls::parse_server_flight; the answers are checked against what OpenSSL negotiated.
#include "tls/server_hello.hpp"

#include "tls/names.hpp"
#include "tls/x509.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace linesman::tls {
namespace {

using bytes = std::vector<std::uint8_t>;

struct ssl_ctx_free {
  void operator()(SSL_CTX* p) const { SSL_CTX_free(p); }
};
struct ssl_free {
  void operator()(SSL* p) const { SSL_free(p); }
};
struct pkey_free {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct x509_free {
  void operator()(X509* p) const { X509_free(p); }
};
using ctx_ptr = std::unique_ptr<SSL_CTX, ssl_ctx_free>;
using ssl_ptr = std::unique_ptr<SSL, ssl_free>;

// A self-signed certificate like Traefik's default one, made in code.
struct test_identity {
  std::unique_ptr<EVP_PKEY, pkey_free> key;
  std::unique_ptr<X509, x509_free> cert;
  bytes der;
};

const test_identity& identity() {
  static const test_identity id = [] {
    test_identity out;
    out.key.reset(EVP_EC_gen("P-256"));
    out.cert.reset(X509_new());
    X509* c = out.cert.get();
    X509_set_version(c, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(c), 4242);
    X509_gmtime_adj(X509_getm_notBefore(c), -3600);
    X509_gmtime_adj(X509_getm_notAfter(c), 86400);
    X509_NAME* name = X509_get_subject_name(c);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("TRAEFIK DEFAULT CERT"), -1,
                               -1, 0);
    X509_set_issuer_name(c, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, c, c, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name,
                                              "DNS:traefik.default,IP:127.0.0.1,IP:::1");
    X509_add_ext(c, ext, -1);
    X509_EXTENSION_free(ext);
    X509_set_pubkey(c, out.key.get());
    X509_sign(c, out.key.get(), EVP_sha256());
    unsigned char* buf = nullptr;
    const int len = i2d_X509(c, &buf);
    out.der.assign(buf, buf + len);
    OPENSSL_free(buf);
    return out;
  }();
  return id;
}

struct server_options {
  int min_version = TLS1_VERSION;
  int max_version = TLS1_3_VERSION;
  const char* groups = nullptr;
  std::size_t max_fragment = 0;  // 0: OpenSSL's default (16384)
  int sni_alert = 0;             // an alert to send from the servername callback (0: none)
  bool alpn_alert = false;       // fail ALPN with no_application_protocol
  const char* cipher_list = nullptr;
};

struct client_options {
  int min_version = TLS1_VERSION;
  int max_version = TLS1_3_VERSION;
  const char* groups = nullptr;
  const char* cipher_list = nullptr;
  const char* sni = "app.example.test";
  bool alpn = false;
};

int sni_callback(SSL*, int* al, void* arg) {
  *al = *static_cast<int*>(arg);
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

int alpn_callback(SSL*, const unsigned char**, unsigned char*, const unsigned char*, unsigned int,
                  void*) {
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

bytes drain(BIO* bio) {
  bytes out;
  std::uint8_t buf[4096];
  for (int i = 0; i < 1000; ++i) {
    const int n = BIO_read(bio, buf, sizeof buf);
    if (n <= 0) {
      break;
    }
    out.insert(out.end(), buf, buf + n);
  }
  return out;
}

// first_flight: run a client and a server in memory until the server has answered the
// ClientHello once; returns the server's bytes. `negotiated` receives the server's SSL.
struct flight_run {
  bytes server_bytes;
  ctx_ptr server_ctx;
  ctx_ptr client_ctx;
  ssl_ptr server;
  ssl_ptr client;
  int sni_alert = 0;
};

std::unique_ptr<flight_run> first_flight(const server_options& so, const client_options& co) {
  auto run = std::make_unique<flight_run>();
  run->server_ctx.reset(SSL_CTX_new(TLS_server_method()));
  SSL_CTX* sctx = run->server_ctx.get();
  SSL_CTX_set_min_proto_version(sctx, so.min_version);
  SSL_CTX_set_max_proto_version(sctx, so.max_version);
  SSL_CTX_use_certificate(sctx, identity().cert.get());
  SSL_CTX_use_PrivateKey(sctx, identity().key.get());
  SSL_CTX_set_security_level(sctx, 0);
  if (so.groups != nullptr) {
    SSL_CTX_set1_groups_list(sctx, so.groups);
  }
  if (so.max_fragment != 0) {
    SSL_CTX_set_max_send_fragment(sctx, so.max_fragment);
  }
  if (so.sni_alert != 0) {
    run->sni_alert = so.sni_alert;
    SSL_CTX_set_tlsext_servername_callback(sctx, sni_callback);
    SSL_CTX_set_tlsext_servername_arg(sctx, &run->sni_alert);
  }
  if (so.cipher_list != nullptr) {
    SSL_CTX_set_cipher_list(sctx, so.cipher_list);
  }
  if (so.alpn_alert) {
    SSL_CTX_set_alpn_select_cb(sctx, alpn_callback, nullptr);
  }

  run->client_ctx.reset(SSL_CTX_new(TLS_client_method()));
  SSL_CTX* cctx = run->client_ctx.get();
  SSL_CTX_set_min_proto_version(cctx, co.min_version);
  SSL_CTX_set_max_proto_version(cctx, co.max_version);
  SSL_CTX_set_security_level(cctx, 0);
  if (co.groups != nullptr) {
    SSL_CTX_set1_groups_list(cctx, co.groups);
  }
  if (co.cipher_list != nullptr) {
    SSL_CTX_set_cipher_list(cctx, co.cipher_list);
  }

  run->server.reset(SSL_new(sctx));
  run->client.reset(SSL_new(cctx));
  SSL_set_bio(run->server.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_bio(run->client.get(), BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  if (co.sni != nullptr) {
    SSL_set_tlsext_host_name(run->client.get(), co.sni);
  }
  if (co.alpn) {
    static const unsigned char kAlpn[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
    SSL_set_alpn_protos(run->client.get(), kAlpn, sizeof kAlpn);
  }
  SSL_set_connect_state(run->client.get());
  SSL_set_accept_state(run->server.get());

  (void)SSL_do_handshake(run->client.get());
  const bytes hello = drain(SSL_get_wbio(run->client.get()));
  BIO_write(SSL_get_rbio(run->server.get()), hello.data(), static_cast<int>(hello.size()));
  (void)SSL_do_handshake(run->server.get());
  run->server_bytes = drain(SSL_get_wbio(run->server.get()));
  ERR_clear_error();
  return run;
}

// negotiated_cipher: the suite the server chose (before TLS 1.3 it is still "pending" while the
// handshake is in flight).
const SSL_CIPHER* negotiated_cipher(SSL* server) {
  const SSL_CIPHER* c = SSL_get_current_cipher(server);
  return c != nullptr ? c : SSL_get_pending_cipher(server);
}

struct parsed {
  server_status status;
  server_flight flight;
  bytes scratch;
};

parsed parse(const bytes& in, std::size_t scratch_len = kServerScratchBytes) {
  parsed p{server_status::malformed, {}, bytes(scratch_len)};
  p.status = parse_server_flight(in, p.scratch, p.flight);
  return p;
}

bytes prefix(const bytes& in, std::size_t n) { return bytes(in.begin(), in.begin() + n); }

// expect_same: the parts of two answers the caller relies on.
void expect_same(const server_flight& a, const server_flight& b) {
  EXPECT_EQ(a.has_server_hello, b.has_server_hello);
  EXPECT_EQ(a.hello_retry_request, b.hello_retry_request);
  EXPECT_EQ(a.legacy_version, b.legacy_version);
  EXPECT_EQ(a.selected_version, b.selected_version);
  EXPECT_EQ(a.cipher_suite, b.cipher_suite);
  EXPECT_EQ(a.key_share_group, b.key_share_group);
  EXPECT_EQ(a.alert.has_value(), b.alert.has_value());
  if (a.alert && b.alert) {
    EXPECT_EQ(a.alert->level, b.alert->level);
    EXPECT_EQ(a.alert->description, b.alert->description);
  }
  EXPECT_EQ(bytes(a.leaf_certificate.begin(), a.leaf_certificate.end()),
            bytes(b.leaf_certificate.begin(), b.leaf_certificate.end()));
  EXPECT_EQ(a.certificate_too_large, b.certificate_too_large);
  EXPECT_EQ(a.flight_bytes, b.flight_bytes);
}

// expect_prefix_property: every proper prefix of the answered flight is incomplete, and every
// longer input (up to all the server sent) gives the same answer.
void expect_prefix_property(const bytes& all, std::size_t scratch_len = kServerScratchBytes) {
  const parsed whole = parse(all, scratch_len);
  ASSERT_EQ(whole.status, server_status::complete);
  const std::size_t answered = whole.flight.flight_bytes;
  ASSERT_GT(answered, 0U);
  ASSERT_LE(answered, all.size());
  for (std::size_t n = 0; n < answered; ++n) {
    const parsed p = parse(prefix(all, n), scratch_len);
    ASSERT_EQ(p.status, server_status::incomplete) << "prefix of " << n << " bytes";
  }
  for (std::size_t n = answered; n <= all.size(); ++n) {
    const bytes part = prefix(all, n);  // the answer's spans borrow it: keep it alive
    const parsed p = parse(part, scratch_len);
    ASSERT_EQ(p.status, server_status::complete) << "prefix of " << n << " bytes";
    expect_same(p.flight, whole.flight);
  }
}

// reframe: the same handshake bytes, re-cut into records of at most `payload` bytes each (other
// records kept as they are). Tests reassembly of messages that span records.
bytes reframe(const bytes& in, std::size_t payload) {
  bytes out;
  std::size_t pos = 0;
  while (pos + 5 <= in.size()) {
    const std::uint8_t type = in[pos];
    const std::size_t len = (static_cast<std::size_t>(in[pos + 3]) << 8U) | in[pos + 4];
    if (pos + 5 + len > in.size()) {
      break;
    }
    if (type != 22) {
      out.insert(out.end(), in.begin() + static_cast<std::ptrdiff_t>(pos),
                 in.begin() + static_cast<std::ptrdiff_t>(pos + 5 + len));
    } else {
      for (std::size_t off = 0; off < len; off += payload) {
        const std::size_t n = std::min(payload, len - off);
        out.insert(out.end(), {type, in[pos + 1], in[pos + 2], static_cast<std::uint8_t>(n >> 8U),
                               static_cast<std::uint8_t>(n & 0xffU)});
        const auto from = in.begin() + static_cast<std::ptrdiff_t>(pos + 5 + off);
        out.insert(out.end(), from, from + static_cast<std::ptrdiff_t>(n));
      }
    }
    pos += 5 + len;
  }
  return out;
}

TEST(ServerFlight, Tls13ServerHelloHasVersionCipherAndNoCertificate) {
  const auto run = first_flight({}, {});
  ASSERT_FALSE(run->server_bytes.empty());
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  const server_flight& f = p.flight;
  EXPECT_TRUE(f.has_server_hello);
  EXPECT_FALSE(f.hello_retry_request);
  EXPECT_EQ(f.legacy_version, 0x0303);
  EXPECT_EQ(f.selected_version, 0x0304);
  EXPECT_EQ(f.version(), 0x0304);
  EXPECT_EQ(version_name(f.version()).view(), "1.3");
  const SSL_CIPHER* cipher = negotiated_cipher(run->server.get());
  ASSERT_NE(cipher, nullptr);
  EXPECT_EQ(f.cipher_suite, SSL_CIPHER_get_protocol_id(cipher));
  EXPECT_EQ(cipher_suite_name(f.cipher_suite).view(), SSL_CIPHER_standard_name(cipher));
  EXPECT_NE(f.key_share_group, 0);
  EXPECT_TRUE(f.leaf_certificate.empty());
  EXPECT_FALSE(f.certificate_message_seen);
  EXPECT_FALSE(f.alert.has_value());
  EXPECT_EQ(f.records, 1U);  // the answer is the ServerHello record; the rest is encrypted
  EXPECT_LT(f.flight_bytes, run->server_bytes.size());
  expect_prefix_property(run->server_bytes);
}

TEST(ServerFlight, Tls12FlightCarriesTheLeafCertificate) {
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  const server_flight& f = p.flight;
  EXPECT_EQ(f.version(), 0x0303);
  EXPECT_EQ(f.selected_version, 0);
  EXPECT_EQ(version_name(f.version()).view(), "1.2");
  const SSL_CIPHER* cipher = negotiated_cipher(run->server.get());
  ASSERT_NE(cipher, nullptr);
  EXPECT_EQ(f.cipher_suite, SSL_CIPHER_get_protocol_id(cipher));
  EXPECT_EQ(cipher_suite_name(f.cipher_suite).view(), SSL_CIPHER_standard_name(cipher));
  EXPECT_EQ(cipher_suite_name(f.cipher_suite).view(), "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384");
  EXPECT_TRUE(f.certificate_message_seen);
  ASSERT_EQ(bytes(f.leaf_certificate.begin(), f.leaf_certificate.end()), identity().der);

  certificate_names names;
  ASSERT_TRUE(describe_certificate(f.leaf_certificate, names));
  EXPECT_EQ(names.subject, "CN=TRAEFIK DEFAULT CERT");
  EXPECT_EQ(names.issuer, "CN=TRAEFIK DEFAULT CERT");
  EXPECT_EQ(names.san, (std::vector<std::string>{"traefik.default", "127.0.0.1", "::1"}));
  expect_prefix_property(run->server_bytes);
}

TEST(ServerFlight, Tls12CipherChoiceFollowsTheClient) {
  const auto run = first_flight({.max_version = TLS1_2_VERSION},
                                {.cipher_list = "ECDHE-ECDSA-CHACHA20-POLY1305"});
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_EQ(cipher_suite_name(p.flight.cipher_suite).view(),
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256");
}

TEST(ServerFlight, Tls11AndTls10Flights) {
  for (int v : {TLS1_1_VERSION, TLS1_VERSION}) {
    const auto run = first_flight({.max_version = v}, {});
    const parsed p = parse(run->server_bytes);
    ASSERT_EQ(p.status, server_status::complete) << v;
    EXPECT_EQ(p.flight.version(), v);
    EXPECT_EQ(bytes(p.flight.leaf_certificate.begin(), p.flight.leaf_certificate.end()),
              identity().der);
    // A TLS 1.3-capable server that settles for less says so in its random (RFC 8446 4.1.3)
    // only when it could have done 1.3; this one was capped, so no sentinel.
    EXPECT_FALSE(p.flight.downgrade_sentinel);
  }
}

TEST(ServerFlight, DowngradeSentinelWhenTheClientCapsAtTls12) {
  const auto run = first_flight({}, {.max_version = TLS1_2_VERSION});
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_EQ(p.flight.version(), 0x0303);
  EXPECT_TRUE(p.flight.downgrade_sentinel);
}

TEST(ServerFlight, CertificateSpanningRecordsIsReassembled) {
  const auto run = first_flight({.max_version = TLS1_2_VERSION, .max_fragment = 512}, {});
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_GT(p.flight.records, 1U);
  EXPECT_EQ(bytes(p.flight.leaf_certificate.begin(), p.flight.leaf_certificate.end()),
            identity().der);
  expect_prefix_property(run->server_bytes);
}

TEST(ServerFlight, ReframedAtEveryRecordSizeGivesTheSameAnswer) {
  for (int version : {TLS1_2_VERSION, TLS1_3_VERSION}) {
    const auto run = first_flight({.max_version = version}, {});
    const parsed whole = parse(run->server_bytes);
    ASSERT_EQ(whole.status, server_status::complete);
    for (std::size_t payload : {1U, 2U, 3U, 4U, 5U, 7U, 64U, 100U, 333U}) {
      const bytes cut = reframe(run->server_bytes, payload);
      const parsed p = parse(cut);
      ASSERT_EQ(p.status, server_status::complete) << "payload " << payload;
      EXPECT_EQ(p.flight.version(), whole.flight.version());
      EXPECT_EQ(p.flight.cipher_suite, whole.flight.cipher_suite);
      EXPECT_EQ(bytes(p.flight.leaf_certificate.begin(), p.flight.leaf_certificate.end()),
                bytes(whole.flight.leaf_certificate.begin(), whole.flight.leaf_certificate.end()));
    }
  }
  // One-byte records, every prefix checked.
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  expect_prefix_property(reframe(run->server_bytes, 1));
}

TEST(ServerFlight, CertificateLargerThanScratchStillAnswers) {
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  // In one record the certificate is read in place, whatever the scratch size...
  const parsed in_place = parse(run->server_bytes, 0);
  ASSERT_EQ(in_place.status, server_status::complete);
  EXPECT_FALSE(in_place.flight.leaf_certificate.empty());
  // ...cut into 100-byte records it must be gathered, and 256 bytes of scratch are too few.
  ASSERT_GT(identity().der.size(), 256U);
  const bytes cut = reframe(run->server_bytes, 100);
  const parsed p = parse(cut, 256);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_EQ(p.flight.version(), 0x0303);
  EXPECT_TRUE(p.flight.certificate_message_seen);
  EXPECT_TRUE(p.flight.certificate_too_large);
  EXPECT_TRUE(p.flight.leaf_certificate.empty());
  expect_prefix_property(cut, 256);
}

TEST(ServerFlight, ServerHelloSpanningRecordsNeedsScratch) {
  const auto run = first_flight({}, {});
  const bytes cut = reframe(run->server_bytes, 16);
  EXPECT_EQ(parse(cut, 0).status, server_status::too_large);
  EXPECT_EQ(parse(cut, 40).status, server_status::too_large);
  EXPECT_EQ(parse(cut).status, server_status::complete);
}

TEST(ServerFlight, HelloRetryRequest) {
  const auto run = first_flight({.groups = "P-384"}, {.groups = "X25519:P-384"});
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_TRUE(p.flight.hello_retry_request);
  EXPECT_EQ(p.flight.selected_version, 0x0304);
  EXPECT_EQ(p.flight.key_share_group, 24);  // secp384r1
  expect_prefix_property(run->server_bytes);
}

struct alert_case {
  const char* name;
  server_options server;
  client_options client;
  std::uint8_t description;
};

class ServerAlert : public ::testing::TestWithParam<alert_case> {};

TEST_P(ServerAlert, AlertAsFirstRecordIsAComplete) {
  const alert_case& c = GetParam();
  const auto run = first_flight(c.server, c.client);
  const parsed p = parse(run->server_bytes);
  ASSERT_EQ(p.status, server_status::complete);
  ASSERT_TRUE(p.flight.alert.has_value());
  EXPECT_EQ(p.flight.alert->level, kAlertFatal);
  EXPECT_EQ(p.flight.alert->description, c.description);
  EXPECT_EQ(alert_level_name(p.flight.alert->level).view(), "fatal");
  EXPECT_EQ(alert_description_name(p.flight.alert->description).view(), c.name);
  EXPECT_FALSE(p.flight.has_server_hello);
  EXPECT_EQ(p.flight.records, 1U);
  EXPECT_EQ(p.flight.flight_bytes, 7U);
  expect_prefix_property(run->server_bytes);
}

INSTANTIATE_TEST_SUITE_P(
    OpenSsl, ServerAlert,
    ::testing::Values(
        alert_case{"unrecognized_name", {.sni_alert = SSL_AD_UNRECOGNIZED_NAME}, {}, 112},
        alert_case{"handshake_failure", {.sni_alert = SSL_AD_HANDSHAKE_FAILURE}, {}, 40},
        alert_case{"protocol_version",
                   {.min_version = TLS1_3_VERSION},
                   {.max_version = TLS1_2_VERSION},
                   70},
        alert_case{"no_application_protocol", {.alpn_alert = true}, {.alpn = true}, 120},
        // No cipher suite in common.
        alert_case{"handshake_failure",
                   {.max_version = TLS1_2_VERSION, .cipher_list = "ECDHE-ECDSA-AES128-GCM-SHA256"},
                   {.max_version = TLS1_2_VERSION, .cipher_list = "AES256-SHA"},
                   40}),
    [](const ::testing::TestParamInfo<alert_case>& param_info) {
      return std::string(param_info.param.name) + "_" + std::to_string(param_info.index);
    });

TEST(ServerFlight, NotTls) {
  const std::string http = "HTTP/1.1 400 Bad Request\r\n\r\n";
  EXPECT_EQ(parse(bytes(http.begin(), http.end())).status, server_status::not_tls);
  EXPECT_EQ(parse(bytes{'S'}).status, server_status::not_tls);
  EXPECT_EQ(parse(bytes{23, 3, 3, 0, 1, 0}).status, server_status::not_tls);  // app data first
  EXPECT_EQ(parse(bytes{22, 2, 0}).status, server_status::not_tls);
  EXPECT_EQ(parse(bytes{}).status, server_status::incomplete);
  EXPECT_EQ(parse(bytes{22}).status, server_status::incomplete);
  EXPECT_EQ(parse(bytes{21, 3}).status, server_status::incomplete);
}

TEST(ServerFlight, Malformed) {
  // Alert record with one byte.
  EXPECT_EQ(parse(bytes{21, 3, 3, 0, 1, 2}).status, server_status::malformed);
  // Zero-length handshake record.
  EXPECT_EQ(parse(bytes{22, 3, 3, 0, 0}).status, server_status::malformed);
  // Record longer than 2^14 + 2048.
  EXPECT_EQ(parse(bytes{22, 3, 3, 0x48, 0x01}).status, server_status::malformed);
  // A ClientHello where a ServerHello belongs.
  EXPECT_EQ(parse(bytes{22, 3, 3, 0, 4, 1, 0, 0, 0}).status, server_status::malformed);
  // A ServerHello too short for its fields.
  EXPECT_EQ(parse(bytes{22, 3, 3, 0, 6, 2, 0, 0, 2, 3, 3}).status, server_status::malformed);
  // A second record with a non-3 major version.
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  bytes b = run->server_bytes;
  const std::size_t first_len = (static_cast<std::size_t>(b[3]) << 8U) | b[4];
  ASSERT_GT(b.size(), 5 + first_len + 5);
  b[5 + first_len + 1] = 9;
  EXPECT_EQ(parse(b).status, server_status::malformed);
  // A ChangeCipherSpec before any ServerHello.
  EXPECT_EQ(parse(bytes{22, 3, 3, 0, 1, 2, 20, 3, 3, 0, 1, 1}).status, server_status::malformed);
}

TEST(ServerFlight, Tls12AbbreviatedHandshakeEndsAtChangeCipherSpec) {
  // Take a real TLS 1.2 ServerHello and follow it by a CCS record, as a resumption does.
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  const bytes& b = run->server_bytes;
  const std::size_t first_len = (static_cast<std::size_t>(b[3]) << 8U) | b[4];
  bytes resumed(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(5 + first_len));
  // OpenSSL writes one record per message: the first record is exactly the ServerHello.
  ASSERT_EQ(resumed[5], 2);
  EXPECT_EQ(parse(resumed).status, server_status::incomplete);
  EXPECT_TRUE(parse(resumed).flight.has_server_hello);
  resumed.insert(resumed.end(), {20, 3, 3, 0, 1, 1});
  const parsed p = parse(resumed);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_TRUE(p.flight.leaf_certificate.empty());
  EXPECT_FALSE(p.flight.certificate_message_seen);
}

TEST(ServerFlight, AlertAfterServerHello) {
  const auto run = first_flight({.max_version = TLS1_2_VERSION}, {});
  const bytes& b = run->server_bytes;
  const std::size_t first_len = (static_cast<std::size_t>(b[3]) << 8U) | b[4];
  bytes flight(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(5 + first_len));
  flight.insert(flight.end(), {21, 3, 3, 0, 2, 2, 80});
  const parsed p = parse(flight);
  ASSERT_EQ(p.status, server_status::complete);
  EXPECT_TRUE(p.flight.has_server_hello);
  ASSERT_TRUE(p.flight.alert.has_value());
  EXPECT_EQ(alert_description_name(p.flight.alert->description).view(), "internal_error");
}

TEST(Certificate, DescribeRejectsGarbageAndTrailingBytes) {
  certificate_names names;
  EXPECT_FALSE(describe_certificate({}, names));
  const bytes junk = {0x30, 0x03, 0x02, 0x01, 0x01};
  EXPECT_FALSE(describe_certificate(junk, names));
  bytes der = identity().der;
  EXPECT_TRUE(describe_certificate(der, names));
  der.push_back(0);
  EXPECT_FALSE(describe_certificate(der, names));
  EXPECT_TRUE(names.subject.empty());
  der.pop_back();
  der.pop_back();
  EXPECT_FALSE(describe_certificate(der, names));
}

}  // namespace
}  // namespace linesman::tls
