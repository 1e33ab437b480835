#include "proxy/inspect.hpp"

#include "proxy/observe_client.hpp"
#include "proxy/observe_server.hpp"
#include "tls/client_hello.hpp"
#include "tls/detect.hpp"
#include "tls/server_hello.hpp"
#include "tls/verdict.hpp"

#include <algorithm>
#include <array>

namespace linesman::proxy {
namespace {

// Scratch for hellos that span records: one per worker thread (parsing is synchronous), so a
// connection never carries it.
thread_local std::array<std::uint8_t, tls::kScratchLen> client_scratch;
thread_local std::array<std::uint8_t, tls::kServerScratchBytes> server_scratch;

// add_warning: `name` in rec.warnings once (the flight is inspected again after every read).
void add_warning(access_record& rec, const char* name) {
  if (std::find(rec.warnings.begin(), rec.warnings.end(), name) == rec.warnings.end()) {
    rec.warnings.emplace_back(name);
  }
}

// sni_read_now: the read in which the server_name extension became complete, kept from an
// earlier call once known. Each call sees one more read, so asking "is it there now?" after every
// read finds the first one. 0 while unknown, and without SNI once the hello is complete.
int sni_read_now(std::span<const std::uint8_t> in, int reads, tls::hello_status st,
                 const tls::client_hello& hello, const access_record& rec) {
  if (reads <= 0) {
    return 0;  // read from a file: no reads to count
  }
  if (st == tls::hello_status::complete) {
    if (hello.sni.empty()) {
      return 0;
    }
    const int earlier = rec.tls ? rec.tls->sni_read : 0;
    return earlier > 0 ? earlier : reads;
  }
  if (rec.tls && rec.tls->sni_read > 0) {
    return rec.tls->sni_read;
  }
  return st == tls::hello_status::incomplete && tls::server_name_arrived(in, client_scratch) ? reads
                                                                                             : 0;
}

}  // namespace

client_check inspect_client_flight(std::span<const std::uint8_t> in, int reads, bool final,
                                   access_record& rec) {
  client_check out;
  const tls::detection d = tls::detect_first_flight(in, tls::direction::client_to_server);
  rec.client_first = observe_first_flight(d, in.size());
  if (in.empty()) {
    return out;
  }
  tls::client_hello hello;
  const auto st = tls::parse_client_hello(in, client_scratch, hello, kHelloLimits);
  if (hello.too_many_records) {
    add_warning(rec, kHelloManyRecords);
  }
  switch (st) {
    case tls::hello_status::complete:
      out.tls = true;
      out.hello_complete = true;
      out.verdict = client_verdict::done;
      break;
    case tls::hello_status::incomplete:
      out.tls = true;
      // Unreachable within kHelloLimits (any hello inside them fits the buffer, and the parser
      // says too_large as soon as one is exceeded); kept so a full buffer always decides.
      if (final && in.size() >= kFlightBufferBytes) {
        out.verdict = client_verdict::too_large;
      }
      break;
    case tls::hello_status::malformed:
      out.tls = true;
      out.verdict = client_verdict::malformed;
      break;
    case tls::hello_status::too_large:
      out.tls = true;
      out.verdict = client_verdict::too_large;
      break;
    case tls::hello_status::not_tls:
      out.verdict = d.complete || final ? client_verdict::done : client_verdict::need_more;
      break;
  }
  if (out.tls) {
    const int sni_read = sni_read_now(in, reads, st, hello, rec);
    rec.tls = observe_client_hello(hello, st, reads);
    rec.tls->sni_read = sni_read;
  }
  return out;
}

reply_verdict inspect_upstream_flight(std::span<const std::uint8_t> in, bool client_tls, bool final,
                                      access_record& rec) {
  const tls::detection d = tls::detect_first_flight(in, tls::direction::server_to_client);
  rec.upstream_first = observe_first_flight(d, in.size());
  if (in.empty()) {
    return final ? reply_verdict::good : reply_verdict::need_more;
  }
  tls::server_flight f;
  const auto st = tls::parse_server_flight(in, server_scratch, f);
  if (f.has_server_hello || f.alert) {
    rec.server_tls = observe_server_flight(f, st);
  }
  if (st == tls::server_status::incomplete && !f.alert) {
    // A TLS 1.2 ServerHello is followed by the Certificate we want to name: keep reading.
    return final ? reply_verdict::good : reply_verdict::need_more;
  }
  // The decision itself is tls::classify_first_reply, shared with `linesman replay`.
  switch (tls::classify_first_reply(st, f.alert.has_value(), client_tls, d)) {
    case tls::first_reply::tls:
      return reply_verdict::good;
    case tls::first_reply::tls_alert:
      return reply_verdict::tls_alert;
    case tls::first_reply::not_tls:
      return reply_verdict::not_tls;
    case tls::first_reply::refusal:
      return reply_verdict::error_reply;
    case tls::first_reply::plaintext:
      break;
  }
  return d.complete || final ? reply_verdict::good : reply_verdict::need_more;
}

}  // namespace linesman::proxy
