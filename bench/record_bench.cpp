// record_bench: serializing one typical TLS access-log record, the old way (an nlohmann tree,
// then dump) against json_writer straight into the buffer, and the ecs/otel mappings.
//   build/release/bench/record_bench --benchmark_min_time=1
#include "proxy/record_format.hpp"

#include <benchmark/benchmark.h>

namespace {

using namespace linesman::proxy;

// typical_tls_record: what a completed TLS connection through a Traefik entrypoint records.
access_record typical_tls_record() {
  access_record r;
  r.ts = std::chrono::system_clock::now();
  r.id = "26b7ae-4711";
  r.listener = "edge";
  r.client = {"127.0.0.1", 40302};
  r.local = {"127.0.0.1", 8443};
  r.duration_us = 23'456;
  r.bytes = {528, 528, 6564, 6564};
  r.timing = {120, 180, 650, 2'345};
  r.close = {stop_by::client, side_end::fin, side_end::fin};
  r.stop = {stop_phase::stream, stop_reason::completed, stop_by::client, ""};
  r.ok = true;
  r.hint = "The connection completed normally: both sides closed after the exchange.";
  r.route = std::nullopt;
  r.upstream = upstream_value{"default", "127.0.0.1:9443", "127.0.0.1", 9443, 51234};
  r.client_first = first_flight_obs{"tls", "TLS handshake ClientHello, record version 1.0", 340};
  r.upstream_first = first_flight_obs{"tls", "TLS handshake ServerHello, record version 1.2", 1460};
  r.tls = tls_obs{};
  r.tls->sni = "app.example.test";
  r.tls->alpn = {"h2", "http/1.1"};
  r.tls->legacy_version = 0x0303;
  r.tls->supported_versions.push(0x0304);
  r.tls->supported_versions.push(0x0303);
  r.tls->cipher_count = 31;
  r.tls->ja3.assign("cd08e31494f9531f560d64c695473da9");
  r.tls->ja4.assign("t13d3112h2_e8f1e7e78f70_6bebaf5329ac");
  r.tls->hello_bytes = 340;
  r.tls->hello_records = 1;
  r.tls->hello_reads = 1;
  r.tls->complete = true;
  r.server_tls = server_tls_obs{0x0304, 0x1302, std::nullopt, std::nullopt};
  return r;
}

void BM_NlohmannTree(benchmark::State& state) {
  const access_record r = typical_tls_record();
  std::string out;
  for (auto _ : state) {
    out.clear();
    nlohmann::json j = r;
    out += j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out += '\n';
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}
BENCHMARK(BM_NlohmannTree);

void BM_Writer(benchmark::State& state, log_format f) {
  const access_record r = typical_tls_record();
  const record_style style{f, "node-1"};
  std::string out;
  for (auto _ : state) {
    out.clear();
    append_record(out, r, style);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * out.size()));
}
BENCHMARK_CAPTURE(BM_Writer, linesman, log_format::linesman);
BENCHMARK_CAPTURE(BM_Writer, ecs, log_format::ecs);
BENCHMARK_CAPTURE(BM_Writer, otel, log_format::otel);

}  // namespace
