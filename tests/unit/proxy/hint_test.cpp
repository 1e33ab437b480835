// hint_for: one test per branch, on records built the way the connection fills them.
#include "proxy/hint.hpp"

#include <string>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

bool has(const std::string& hay, const std::string& needle) {
  return hay.find(needle) != std::string::npos;
}

access_record stopped(stop_phase p, stop_reason r, stop_by b = stop_by::upstream) {
  access_record rec;
  rec.stop.phase = p;
  rec.stop.reason = r;
  rec.stop.by = b;
  rec.upstream = upstream_value{"default", "127.0.0.1:8443", "127.0.0.1", 8443, 40000};
  return rec;
}

void tls_client(access_record& rec, std::optional<std::string> sni) {
  rec.client_first = first_flight_obs{"tls", "TLS ClientHello", 517};
  tls_obs t;
  t.sni = std::move(sni);
  t.complete = true;
  rec.tls = t;
}

void plain_client(access_record& rec, const std::string& proto, const std::string& summary) {
  rec.client_first = first_flight_obs{proto, summary, 18};
}

void certificate(access_record& rec, const std::string& subject, std::vector<std::string> san) {
  server_tls_obs s;
  s.version = tls::kTls12;
  s.cipher = 0xc02c;  // TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
  s.certificate = certificate_obs{subject, subject, std::move(san)};
  rec.server_tls = s;
  rec.upstream_first = first_flight_obs{"tls", "TLS ServerHello 1.2", 900};
}

void printable_one_line(const std::string& h) {
  EXPECT_FALSE(h.empty());
  for (char c : h) {
    const auto u = static_cast<unsigned char>(c);
    EXPECT_TRUE(u >= 0x20 && u != 0x7f) << h;
  }
}

TEST(Hint, ClosedSilentlyNamesTheSniAndTheRouterRule) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  tls_client(rec, "shop.example.test");
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "no TCP router on this entrypoint matched SNI 'shop.example.test'")) << h;
  EXPECT_TRUE(has(h, "Host()")) << h;
  EXPECT_TRUE(has(h, "HostSNI(`shop.example.test`) on a router without tls")) << h;
  printable_one_line(h);
}

TEST(Hint, AnInjectedFaultComesFirst) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  tls_client(rec, "shop.example.test");
  rec.fault = fault_value{"split_hello", {{"records", "2"}}};
  const auto h = hint_for(rec);
  EXPECT_EQ(h.rfind("linesman injected the fault split_hello on this connection", 0), 0U) << h;
  EXPECT_TRUE(has(h, "no TCP router on this entrypoint matched")) << h;
  printable_one_line(h);
}

TEST(Hint, TraefikDefaultCertificate) {
  auto rec = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  tls_client(rec, "shop.example.test");
  certificate(rec, "CN=TRAEFIK DEFAULT CERT", {"a1b2.traefik.default"});
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "No TCP router matched")) << h;
  EXPECT_TRUE(has(h, "default certificate")) << h;
  EXPECT_TRUE(has(h, "'shop.example.test'")) << h;
  EXPECT_TRUE(has(h, "HTTP router")) << h;
}

TEST(Hint, CertificateNotCoveringTheSniMeansTerminatedInsteadOfPassthrough) {
  auto rec = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  tls_client(rec, "app.example.test");
  certificate(rec, "CN=other.example.test", {"other.example.test"});
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "TLS was terminated where passthrough was meant")) << h;
  EXPECT_TRUE(has(h, "CN=other.example.test")) << h;
  EXPECT_TRUE(has(h, "'app.example.test'")) << h;
  EXPECT_TRUE(has(h, "tls.passthrough=true")) << h;
}

TEST(Hint, CertificateMatchingFollowsRfc6125) {
  const auto hint_with = [](const std::string& sni, const std::string& subject,
                            std::vector<std::string> san) {
    auto rec = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
    tls_client(rec, sni);
    certificate(rec, subject, std::move(san));
    return hint_for(rec);
  };
  const auto mismatch = [&](const std::string& sni, const std::string& subject,
                            std::vector<std::string> san) {
    return has(hint_with(sni, subject, std::move(san)), "passthrough was meant");
  };
  // Exact, case-insensitive, trailing dot.
  EXPECT_FALSE(mismatch("App.Example.Test.", "CN=x", {"app.example.test"}));
  // Wildcard: exactly one left-most label.
  EXPECT_FALSE(mismatch("app.example.test", "CN=x", {"*.example.test"}));
  EXPECT_TRUE(mismatch("example.test", "CN=x", {"*.example.test"}));
  EXPECT_TRUE(mismatch("a.b.example.test", "CN=x", {"*.example.test"}));
  EXPECT_TRUE(mismatch("app.test", "CN=x", {"*.test"}));  // no wildcard over a public suffix-ish
  EXPECT_TRUE(mismatch("app.example.test", "CN=x", {"app*.example.test"}));
  // With DNS SANs the CN is not looked at; without any, it is.
  EXPECT_TRUE(mismatch("app.example.test", "CN=app.example.test", {"other.example.test"}));
  EXPECT_FALSE(mismatch("app.example.test", "CN=app.example.test,O=Example", {}));
  EXPECT_FALSE(mismatch("app.example.test", "O=Example,CN=*.example.test", {"127.0.0.1"}));
  // IP SANs never cover a host name.
  EXPECT_TRUE(mismatch("app.example.test", "CN=other", {"127.0.0.1", "::1"}));
  // A DNS name ending in a digit is a name, not an address.
  EXPECT_FALSE(mismatch("node1.example.test", "CN=x", {"node1.example.test"}));
}

TEST(Hint, ClientWithoutSniToSniRoutes) {
  for (auto reason : {stop_reason::no_route, stop_reason::upstream_closed_silently}) {
    auto rec = stopped(
        reason == stop_reason::no_route ? stop_phase::route : stop_phase::first_reply, reason);
    tls_client(rec, std::nullopt);
    const auto h = hint_for(rec);
    EXPECT_TRUE(has(h, "no SNI")) << h;
    EXPECT_TRUE(has(h, "HostSNI routes cannot match it")) << h;
    EXPECT_TRUE(has(h, "HostSNI(`*`)")) << h;
  }
}

TEST(Hint, PostgresHostsslOnly) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_error_reply);
  plain_client(rec, "postgres", "StartupMessage v3.0 user=shop database=orders");
  rec.upstream_first = first_flight_obs{
      "postgres",
      "ErrorResponse FATAL 28000: no pg_hba.conf entry for host \"127.0.0.1\", user \"shop\", "
      "database \"orders\", no encryption",
      160};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "no encryption")) << h;
  EXPECT_TRUE(has(h, "hostssl")) << h;
  EXPECT_TRUE(has(h, "sslmode=require")) << h;
  EXPECT_FALSE(has(h, "shop")) << "no user names in the hint: " << h;
}

TEST(Hint, OtherErrorReplyKeepsTheDefaultAndTheSummary) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_error_reply);
  plain_client(rec, "smtp", "EHLO x");
  rec.upstream_first = first_flight_obs{"smtp", "554 no service", 16};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "protocol-level refusal")) << h;
  EXPECT_TRUE(has(h, "upstream said: 554 no service")) << h;
}

TEST(Hint, PassthroughToPlainHttpBackend) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_not_tls);
  tls_client(rec, "app.example.test");
  rec.upstream_first = first_flight_obs{"http1", "HTTP/1.1 400 Bad Request", 120};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "TLS passthrough to a backend that speaks plain HTTP")) << h;
  EXPECT_TRUE(has(h, "HTTP/1.1 400 Bad Request")) << h;
}

TEST(Hint, PostgresHoldingTheEntrypointPort) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_not_tls);
  tls_client(rec, "app.example.test");
  rec.upstream_first = first_flight_obs{
      "postgres", "ErrorResponse FATAL 08P01: invalid length of startup packet", 90};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "Another program (PostgreSQL) holds the entrypoint port 127.0.0.1:8443")) << h;
}

TEST(Hint, SshHoldingTheEntrypointPort) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_not_tls);
  tls_client(rec, "app.example.test");
  rec.upstream_first = first_flight_obs{"ssh", "SSH-2.0-OpenSSH_9.2p1", 40};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "Another program (ssh)")) << h;
  EXPECT_TRUE(has(h, "SSH-2.0-OpenSSH_9.2p1")) << h;
}

TEST(Hint, PlaintextClientGetsAnAlertFromATlsBackend) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_tls_alert);
  plain_client(rec, "http1", "GET / HTTP/1.1");
  server_tls_obs s;
  s.alert = alert_obs{tls::kAlertFatal, 70};
  rec.server_tls = s;
  rec.upstream_first = first_flight_obs{"tls", "TLS alert fatal protocol_version", 7};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h,
                  "the backend requires TLS: the router must terminate TLS or the client must "
                  "use TLS") ||
              has(h,
                  "The backend requires TLS: the router must terminate TLS or the client must "
                  "use TLS"))
      << h;
  EXPECT_TRUE(has(h, "protocol_version")) << h;
}

TEST(Hint, PlaintextClientClosedSilently) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  plain_client(rec, "http1", "GET / HTTP/1.1");
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "plaintext http1")) << h;
  EXPECT_TRUE(has(h, "router must terminate TLS or the client must use TLS")) << h;
  EXPECT_TRUE(has(h, "HostSNI(`*`)")) << h;
}

TEST(Hint, RefusedNamesTheAddressAndTheEntrypoint) {
  auto rec = stopped(stop_phase::connect, stop_reason::upstream_refused);
  tls_client(rec, "app.example.test");
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "Nothing listens on 127.0.0.1:8443")) << h;
  EXPECT_TRUE(has(h, "entrypoint")) << h;
  EXPECT_TRUE(has(h, "static configuration")) << h;
}

TEST(Hint, ResolveFailedNamesTheHost) {
  auto rec = stopped(stop_phase::connect, stop_reason::upstream_resolve_failed, stop_by::proxy);
  rec.upstream = upstream_value{"default", "backend.nonexistent.invalid:443", "", 0, 0};
  auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "'backend.nonexistent.invalid' does not resolve")) << h;
  rec.upstream->address = "[fd00::1]:443";
  h = hint_for(rec);
  EXPECT_TRUE(has(h, "'fd00::1'")) << h;
}

TEST(Hint, UnreachableNamesTheAddress) {
  auto rec = stopped(stop_phase::connect, stop_reason::upstream_unreachable);
  rec.upstream = upstream_value{"default", "198.51.100.1:443", "", 0, 0};
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "198.51.100.1:443 cannot be reached")) << h;
}

TEST(Hint, OtherStopsKeepTheDefaultHint) {
  auto rec = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  EXPECT_EQ(hint_for(rec), std::string(default_hint(stop_phase::stream, stop_reason::completed)));
  auto nr = stopped(stop_phase::route, stop_reason::no_route, stop_by::proxy);
  tls_client(nr, "other.example.test");
  EXPECT_TRUE(has(hint_for(nr), "SNI was 'other.example.test'")) << hint_for(nr);
}

TEST(Hint, PeerTextIsBoundedAndPrintable) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_not_tls);
  tls_client(rec, "app.example.test");
  rec.upstream_first =
      first_flight_obs{"http1", "HTTP/1.1 400 " + std::string(500, 'x') + "\n\r\x01", 600};
  const auto h = hint_for(rec);
  printable_one_line(h);
  EXPECT_LT(h.size(), 400u) << h;
  EXPECT_TRUE(has(h, "...")) << h;
}

// Issue 20: when the client closed first, the upstream's silent close answers that close; the
// hint must not send the user to the router rules.
TEST(Hint, ClientClosedFirstIsNotBlamedOnTheRouter) {
  for (const bool tls : {true, false}) {
    auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
    if (tls) {
      tls_client(rec, "shop.example.test");
    } else {
      plain_client(rec, "http1", "GET / HTTP/1.1");
    }
    rec.close.first = stop_by::client;
    const auto h = hint_for(rec);
    EXPECT_FALSE(has(h, "router")) << h;
    EXPECT_FALSE(has(h, "HostSNI")) << h;
    EXPECT_TRUE(has(h, "client closed first")) << h;
    printable_one_line(h);
  }
}

// A Firefox-like hello: X25519MLKEM768 first, GREASE ECH, SNI completed in read `sni_read`.
void modern_client(access_record& rec, int sni_read, int records = 1, bool ech = true) {
  tls_client(rec, "www.firefox.test");
  rec.tls->key_share_groups.push(0x11ec);
  rec.tls->key_share_groups.push(0x001d);
  rec.tls->ech = ech;
  rec.tls->ech_config_id = ech ? 7 : -1;
  rec.tls->sni_read = sni_read;
  rec.tls->hello_reads = 2;
  rec.tls->hello_records = records;
  rec.tls->hello_bytes = 1894;
}

bool warned(const access_record& r, const char* w) { return has_warning(r, w); }

TEST(Warnings, SniInReadTwoThenSilentCloseNamesTheOneSegmentRouter) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  rec.close.first = stop_by::upstream;
  modern_client(rec, 2);
  add_record_warnings(rec);
  EXPECT_TRUE(warned(rec, kWarnSniAfterFirstSegment));
  EXPECT_TRUE(warned(rec, kWarnEchOuterNameOnly));  // failed, with ECH: only the outer name
  EXPECT_FALSE(warned(rec, kWarnHelloMultiRecord));
  EXPECT_FALSE(warned(rec, kWarnDefaultCertificate));
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "arrived in read 2")) << h;
  EXPECT_TRUE(has(h, "inspects only the first segment")) << h;
  EXPECT_TRUE(has(h, "tcp-request inspect-delay")) << h;
  EXPECT_TRUE(has(h, "v3.6.11")) << h;
  EXPECT_TRUE(has(h, "-groups X25519")) << h;
  EXPECT_TRUE(has(h, "--curves X25519")) << h;
  EXPECT_TRUE(has(h, "post-quantum")) << h;
  EXPECT_TRUE(has(h, "outer name 'www.firefox.test'")) << h;
  printable_one_line(h);
}

TEST(Warnings, ResetAndDefaultCertificateCountAsTheSameFailure) {
  auto reset = stopped(stop_phase::first_reply, stop_reason::upstream_reset);
  modern_client(reset, 2, 1, false);
  add_record_warnings(reset);
  EXPECT_TRUE(has(hint_for(reset), "reset the connection after a ClientHello whose SNI"));

  // The default certificate ends the record "ok": only the warnings (and hint) say otherwise.
  auto cert = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  cert.ok = true;
  modern_client(cert, 2);
  certificate(cert, "CN=TRAEFIK DEFAULT CERT", {});
  add_record_warnings(cert);
  EXPECT_TRUE(warned(cert, kWarnDefaultCertificate));
  EXPECT_TRUE(warned(cert, kWarnSniAfterFirstSegment));
  EXPECT_TRUE(warned(cert, kWarnEchOuterNameOnly));
  const auto h = hint_for(cert);
  EXPECT_TRUE(has(h, "answered with a default or foreign certificate")) << h;

  // A TLS 1.2 certificate whose names do not cover the SNI is a default certificate too.
  auto foreign = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  foreign.ok = true;
  tls_client(foreign, "app.example.test");
  certificate(foreign, "CN=other.example.test", {"other.example.test"});
  add_record_warnings(foreign);
  EXPECT_TRUE(warned(foreign, kWarnDefaultCertificate));
  EXPECT_FALSE(warned(foreign, kWarnSniAfterFirstSegment));
}

TEST(Warnings, MultiRecordHelloHint) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  modern_client(rec, 1, 3, false);
  add_record_warnings(rec);
  EXPECT_TRUE(warned(rec, kWarnHelloMultiRecord));
  EXPECT_FALSE(warned(rec, kWarnSniAfterFirstSegment));
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "in 3 TLS records")) << h;
  EXPECT_TRUE(has(h, "-groups X25519")) << h;
}

TEST(Warnings, HealthyModernHelloGetsNoFailureWarnings) {
  auto rec = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  rec.ok = true;
  modern_client(rec, 1);
  add_record_warnings(rec);
  EXPECT_TRUE(rec.warnings.empty()) << rec.warnings.front();
  // An interim record is not a failure either.
  auto open = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  open.open_state = true;
  modern_client(open, 1);
  add_record_warnings(open);
  EXPECT_TRUE(open.warnings.empty());
  // Late SNI on a connection that worked: the warning stands (a one-segment router would fail),
  // the hint does not blame a router.
  auto late = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  late.ok = true;
  modern_client(late, 2);
  add_record_warnings(late);
  EXPECT_EQ(late.warnings, std::vector<std::string>{kWarnSniAfterFirstSegment});
  EXPECT_FALSE(has(hint_for(late), "inspects only the first segment"));
}

TEST(Warnings, AddedOnceWhenCalledAgain) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  modern_client(rec, 2);
  add_record_warnings(rec);
  const auto first = rec.warnings;
  add_record_warnings(rec);
  EXPECT_EQ(rec.warnings, first);
}

TEST(Warnings, ProxyHeaderWithAnIpv4MappedAddress) {
  auto rec = stopped(stop_phase::first_reply, stop_reason::upstream_closed_silently);
  proxy_protocol_value pp;
  pp.version = 2;
  pp.command = "proxy";
  pp.source = endpoint_value{"::ffff:192.0.2.7", 40000};
  pp.destination = endpoint_value{"::ffff:192.0.2.8", 443};
  pp.forwarded = true;
  rec.proxy_protocol = pp;
  add_record_warnings(rec);
  EXPECT_TRUE(warned(rec, kWarnProxyV4Mapped));
  const auto h = hint_for(rec);
  EXPECT_TRUE(has(h, "IPv4-mapped")) << h;
  EXPECT_TRUE(has(h, "Traefik drops such headers")) << h;

  auto sent = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  sent.proxy_out = proxy_out_value{1, {"::FFFF:10.0.0.1", 1}, {"10.0.0.2", 2}, "", 40};
  add_record_warnings(sent);
  EXPECT_TRUE(warned(sent, kWarnProxyV4Mapped));

  // Plain IPv6 and plain IPv4 are fine.
  auto plain = stopped(stop_phase::stream, stop_reason::completed, stop_by::client);
  plain.proxy_out = proxy_out_value{2, {"2001:db8::1", 1}, {"192.0.2.1", 2}, "", 52};
  add_record_warnings(plain);
  EXPECT_FALSE(warned(plain, kWarnProxyV4Mapped));
}

}  // namespace
}  // namespace linesman::proxy
