// tls_bench: nanoseconds per ClientHello for tls::parse_client_hello (alone and with JA3/JA4),
// against OpenSSL parsing the same hello up to its client-hello callback, as Envoy's
// tls_inspector does (a server SSL per connection fed through memory BIOs; the callback stops
// the handshake). One iteration = one hello; the corpus hellos are taken in turn.
#include "tls/client_hello.hpp"
#include "tls/fingerprint.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

namespace {

using bytes = std::vector<std::uint8_t>;

// corpus_hellos: every complete corpus hello that starts at byte 0 (OpenSSL does not skip a
// PostgreSQL SSLRequest), cut to the hello itself; or only the case named `only`.
std::vector<bytes> corpus_hellos(const std::string& only = {}) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(fs::path(LINESMAN_TEST_DATA) / "corpus" / "cases")) {
    if (e.path().extension() == ".bin" && (only.empty() || e.path().stem() == only)) {
      files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<bytes> out;
  bytes scratch(linesman::tls::kScratchLen);
  for (const auto& p : files) {
    std::ifstream f(p, std::ios::binary);
    bytes in{std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
    linesman::tls::client_hello h;
    if (linesman::tls::parse_client_hello(in, scratch, h) ==
            linesman::tls::hello_status::complete &&
        h.tls_offset == 0) {
      in.resize(h.wire_len);
      out.push_back(std::move(in));
    }
  }
  return out;
}

void set_bytes(benchmark::State& state, const std::vector<bytes>& hellos) {
  std::size_t total = 0;
  for (const auto& h : hellos) {
    total += h.size();
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["hellos"] = static_cast<double>(hellos.size());
  state.counters["avg_hello_bytes"] =
      static_cast<double>(total) / static_cast<double>(hellos.size());
}

// prints: what run_ours computes after parsing: nothing, every JA3/JA4 string (ja3(), ja4(), as
// `linesman inspect` does), or the two a record keeps (fingerprints(), as the proxy does).
enum class prints : std::uint8_t { none, all, recorded };

void run_ours(benchmark::State& state, const std::vector<bytes>& hellos, prints fingerprints) {
  if (hellos.empty()) {
    state.SkipWithError("no corpus hellos");
    return;
  }
  bytes scratch(linesman::tls::kScratchLen);
  std::size_t i = 0;
  for (auto _ : state) {
    const bytes& in = hellos[i];
    i = i + 1 == hellos.size() ? 0 : i + 1;
    linesman::tls::client_hello h;
    const auto st = linesman::tls::parse_client_hello(in, scratch, h);
    benchmark::DoNotOptimize(st);
    benchmark::DoNotOptimize(h.sni.data());
    if (fingerprints == prints::all) {
      auto j3 = linesman::tls::ja3(h);
      auto j4 = linesman::tls::ja4(h);
      benchmark::DoNotOptimize(j3.md5.data());
      benchmark::DoNotOptimize(j4.ja4.data());
    } else if (fingerprints == prints::recorded) {
      auto f = linesman::tls::fingerprints(h);
      benchmark::DoNotOptimize(f.ja3_md5.data());
      benchmark::DoNotOptimize(f.ja4.data());
    }
  }
  set_bytes(state, hellos);
}

int stop_at_hello(SSL* /*ssl*/, int* /*alert*/, void* arg) {
  ++*static_cast<std::size_t*>(arg);
  return SSL_CLIENT_HELLO_RETRY;  // suspends the handshake: nothing past the hello is done
}

void run_openssl(benchmark::State& state, const std::vector<bytes>& hellos) {
  if (hellos.empty()) {
    state.SkipWithError("no corpus hellos");
    return;
  }
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  std::size_t reached = 0;
  SSL_CTX_set_client_hello_cb(ctx, stop_at_hello, &reached);
  std::size_t i = 0;
  for (auto _ : state) {
    const bytes& in = hellos[i];
    i = i + 1 == hellos.size() ? 0 : i + 1;
    SSL* ssl = SSL_new(ctx);
    BIO* rbio = BIO_new_mem_buf(in.data(), static_cast<int>(in.size()));
    BIO* wbio = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_accept_state(ssl);
    benchmark::DoNotOptimize(SSL_do_handshake(ssl));
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  ERR_clear_error();
  if (reached != static_cast<std::size_t>(state.iterations())) {
    state.SkipWithError("OpenSSL did not reach its client-hello callback on every hello");
  }
  set_bytes(state, hellos);
}

const std::vector<bytes>& all() {
  static const std::vector<bytes> hellos = corpus_hellos();
  return hellos;
}
const std::vector<bytes>& firefox() {
  static const std::vector<bytes> hellos = corpus_hellos("firefox_sni");
  return hellos;
}
const std::vector<bytes>& big() {
  static const std::vector<bytes> hellos = corpus_hellos("edge_single_record_16384");
  return hellos;
}

void BM_ours_parse_corpus(benchmark::State& s) { run_ours(s, all(), prints::none); }
// The corpus in turn: every hello differs from the last few, so the digests and results are never
// reused (tls/fingerprint.cpp, digest_memo and result_memo). Firefox's hello again and again:
// they always are.
void BM_ours_parse_fingerprints_corpus(benchmark::State& s) { run_ours(s, all(), prints::all); }
void BM_ours_parse_fingerprints_same_hello(benchmark::State& s) {
  run_ours(s, firefox(), prints::all);
}
void BM_ours_parse_recorded_fingerprints_corpus(benchmark::State& s) {
  run_ours(s, all(), prints::recorded);
}
void BM_ours_parse_recorded_fingerprints_same_hello(benchmark::State& s) {
  run_ours(s, firefox(), prints::recorded);
}
void BM_openssl_client_hello_cb_corpus(benchmark::State& s) { run_openssl(s, all()); }
void BM_ours_parse_16k(benchmark::State& s) { run_ours(s, big(), prints::none); }
void BM_openssl_client_hello_cb_16k(benchmark::State& s) { run_openssl(s, big()); }

BENCHMARK(BM_ours_parse_corpus);
BENCHMARK(BM_ours_parse_fingerprints_corpus);
BENCHMARK(BM_ours_parse_fingerprints_same_hello);
BENCHMARK(BM_ours_parse_recorded_fingerprints_corpus);
BENCHMARK(BM_ours_parse_recorded_fingerprints_same_hello);
BENCHMARK(BM_openssl_client_hello_cb_corpus);
BENCHMARK(BM_ours_parse_16k);
BENCHMARK(BM_openssl_client_hello_cb_16k);

}  // namespace
