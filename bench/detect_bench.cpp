// detect_bench: cost of first-bytes detection (tls::detect_first_flight) on the corpus' plaintext
// cases and a few server answers, and of tls::parse_server_flight on real OpenSSL server flights
// (TLS 1.3 ServerHello; TLS 1.2 ServerHello + Certificate, with the certificate's names read by
// OpenSSL as a separate figure, since that runs once per connection, off the parse path).
#include "tls/detect.hpp"
#include "tls/server_hello.hpp"
#include "tls/x509.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace {

using bytes = std::vector<std::uint8_t>;
using linesman::tls::direction;

bytes read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

bytes text(std::string_view s) { return bytes(s.begin(), s.end()); }

void bm_detect(benchmark::State& state, bytes in, direction dir) {
  for (auto _ : state) {
    auto d = linesman::tls::detect_first_flight(in, dir);
    benchmark::DoNotOptimize(d);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

bytes drain(BIO* bio) {
  bytes out;
  std::array<std::uint8_t, 4096> buf{};
  for (int i = 0; i < 1000; ++i) {
    const int n = BIO_read(bio, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) {
      break;
    }
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  return out;
}

// server_flight_bytes: what an OpenSSL server capped at `max_version` answers to a default
// OpenSSL ClientHello, produced in memory.
bytes server_flight_bytes(int max_version) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("TRAEFIK DEFAULT CERT"), -1, -1,
                             0);
  X509_set_issuer_name(cert, X509_get_subject_name(cert));
  X509_set_pubkey(cert, key);
  X509_sign(cert, key, EVP_sha256());

  SSL_CTX* sctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_max_proto_version(sctx, max_version);
  SSL_CTX_use_certificate(sctx, cert);
  SSL_CTX_use_PrivateKey(sctx, key);
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  SSL* server = SSL_new(sctx);
  SSL* client = SSL_new(cctx);
  SSL_set_bio(server, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_bio(client, BIO_new(BIO_s_mem()), BIO_new(BIO_s_mem()));
  SSL_set_tlsext_host_name(client, "app.example.test");
  SSL_set_connect_state(client);
  SSL_set_accept_state(server);
  (void)SSL_do_handshake(client);
  const bytes hello = drain(SSL_get_wbio(client));
  BIO_write(SSL_get_rbio(server), hello.data(), static_cast<int>(hello.size()));
  (void)SSL_do_handshake(server);
  bytes out = drain(SSL_get_wbio(server));
  ERR_clear_error();
  SSL_free(client);
  SSL_free(server);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  X509_free(cert);
  EVP_PKEY_free(key);
  return out;
}

std::array<std::uint8_t, linesman::tls::kServerScratchBytes> scratch;

void bm_server_flight(benchmark::State& state, bytes in) {
  for (auto _ : state) {
    linesman::tls::server_flight f;
    auto st = linesman::tls::parse_server_flight(in, scratch, f);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(f);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * in.size()));
}

void bm_certificate_names(benchmark::State& state, bytes in) {
  linesman::tls::server_flight f;
  if (linesman::tls::parse_server_flight(in, scratch, f) !=
          linesman::tls::server_status::complete ||
      f.leaf_certificate.empty()) {
    state.SkipWithError("no certificate in the flight");
    return;
  }
  const bytes der(f.leaf_certificate.begin(), f.leaf_certificate.end());
  for (auto _ : state) {
    linesman::tls::certificate_names names;
    benchmark::DoNotOptimize(linesman::tls::describe_certificate(der, names));
  }
}

const bool kRegistered = [] {
  const std::filesystem::path cases =
      std::filesystem::path(LINESMAN_TEST_DATA) / "corpus" / "cases";
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(cases)) {
    const std::string name = e.path().filename().string();
    if (e.path().extension() == ".bin" &&
        (name.rfind("plain_", 0) == 0 || name == "openssl_starttls_postgres.bin" ||
         name == "curl_https_default.bin")) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  for (const auto& p : files) {
    benchmark::RegisterBenchmark(("detect/client/" + p.stem().string()).c_str(), bm_detect,
                                 read_file(p), direction::client_to_server);
  }
  const std::vector<std::pair<std::string, bytes>> server = {
      {"http_400", text("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")},
      {"smtp_greeting", text("220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n")},
      {"ssh_banner", text("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n")},
      {"tls_alert", bytes{21, 3, 3, 0, 2, 2, 112}},
  };
  for (const auto& [name, in] : server) {
    benchmark::RegisterBenchmark(("detect/server/" + name).c_str(), bm_detect, in,
                                 direction::server_to_client);
  }
  const bytes tls13 = server_flight_bytes(TLS1_3_VERSION);
  const bytes tls12 = server_flight_bytes(TLS1_2_VERSION);
  benchmark::RegisterBenchmark("detect/server/tls13_server_hello", bm_detect, tls13,
                               direction::server_to_client);
  benchmark::RegisterBenchmark("server_flight/tls13_server_hello", bm_server_flight, tls13);
  benchmark::RegisterBenchmark("server_flight/tls12_hello_certificate", bm_server_flight, tls12);
  benchmark::RegisterBenchmark("certificate_names/openssl_x509", bm_certificate_names, tls12);
  return true;
}();

}  // namespace
