// First-bytes detection: each protocol in both directions, the corpus' plaintext and TLS cases,
// prefix stability, secrets kept out of summaries, and bounds on random input.
#include "tls/detect.hpp"

#include "hello_builder.hpp"
#include "tests/unit/test_data.hpp"
#include "tls/proxy_header.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::tls {
namespace {

using bytes = std::vector<std::uint8_t>;
constexpr auto kClient = direction::client_to_server;
constexpr auto kServer = direction::server_to_client;

using testing::text;

bytes operator+(bytes a, const bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

bytes be32(std::uint32_t v) {
  return {static_cast<std::uint8_t>(v >> 24U), static_cast<std::uint8_t>(v >> 16U),
          static_cast<std::uint8_t>(v >> 8U), static_cast<std::uint8_t>(v)};
}

// pg_message: a typed PostgreSQL message (type, self-inclusive length, body).
bytes pg_message(char type, const bytes& body) {
  return bytes{static_cast<std::uint8_t>(type)} +
         be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

bytes pg_startup(const std::vector<std::pair<std::string, std::string>>& params) {
  bytes body = be32(0x00030000);
  for (const auto& [k, v] : params) {
    body = body + text(k) + bytes{0} + text(v) + bytes{0};
  }
  body.push_back(0);
  return be32(static_cast<std::uint32_t>(body.size() + 4)) + body;
}

bytes mysql_packet(const bytes& payload) {
  return bytes{static_cast<std::uint8_t>(payload.size() & 0xffU),
               static_cast<std::uint8_t>((payload.size() >> 8U) & 0xffU), 0, 0} +
         payload;
}

bytes read_case(const std::string& name) {
  const std::filesystem::path p = linesman::test::kCorpusCases / (name + ".bin");
  EXPECT_TRUE(std::ifstream(p, std::ios::binary).good()) << p;
  return linesman::test::slurp(p);
}

std::string str(const detection& d) { return std::string(d.summary.view()); }

bool printable(std::string_view s) {
  return std::ranges::all_of(s, [](char c) { return c >= 0x20 && c < 0x7f; });
}

// expect_stable: the answer for every prefix is either incomplete or exactly the full answer,
// and once complete it stays so for longer inputs (the full input plus junk).
void expect_stable(const bytes& in, direction dir) {
  const detection full = detect_first_flight(in, dir);
  for (std::size_t n = 0; n <= in.size(); ++n) {
    const detection d = detect_first_flight(std::span(in).first(n), dir);
    ASSERT_LE(d.summary.view().size(), summary_text::kMaxSummary);
    ASSERT_TRUE(printable(d.summary.view())) << d.summary.view();
    if (d.complete) {
      ASSERT_EQ(d.proto, full.proto) << "prefix " << n;
      ASSERT_EQ(str(d), str(full)) << "prefix " << n;
      ASSERT_TRUE(full.complete) << "prefix " << n;
    }
  }
  if (full.complete) {
    for (const bytes& junk :
         {bytes{0}, bytes{'\r', '\n'}, bytes{0xff, 0x16, 'A'}, text(" x y\r\n")}) {
      const detection d = detect_first_flight(in + junk, dir);
      ASSERT_EQ(d.proto, full.proto);
      ASSERT_EQ(str(d), str(full));
      ASSERT_TRUE(d.complete);
    }
  }
}

struct detect_case {
  const char* name;
  direction dir;
  bytes in;
  protocol proto;
  std::string summary;
  bool complete = true;
};

std::ostream& operator<<(std::ostream& os, const detect_case& c) { return os << c.name; }

class Detect : public ::testing::TestWithParam<detect_case> {};

TEST_P(Detect, ProtocolSummaryAndStability) {
  const detect_case& c = GetParam();
  const detection d = detect_first_flight(c.in, c.dir);
  EXPECT_EQ(protocol_name(d.proto), protocol_name(c.proto));
  EXPECT_EQ(str(d), c.summary);
  EXPECT_EQ(d.complete, c.complete);
  expect_stable(c.in, c.dir);
}

const std::string kPgHba =
    "no pg_hba.conf entry for host \"127.0.0.1\", user \"app\", database \"appdb\", no encryption";

std::vector<detect_case> cases() {
  std::vector<detect_case> v = {
      // ---- client to server ----
      {"corpus_http_get", kClient, read_case("plain_curl_http11_get"), protocol::http1,
       "GET /index.html HTTP/1.1"},
      {"corpus_http_connect", kClient, read_case("plain_curl_proxy_connect"), protocol::http1,
       "CONNECT www.example.test:443 HTTP/1.1"},
      {"corpus_redis_ping", kClient, read_case("plain_redis_cli_ping"), protocol::redis, "PING"},
      {"corpus_ssh_client", kClient, read_case("plain_ssh_banner"), protocol::ssh,
       "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6"},
      {"corpus_tls_curl", kClient, read_case("curl_https_default"), protocol::tls,
       "TLS handshake ClientHello, record version 1.0"},
      {"corpus_tls_java", kClient, read_case("java_sslsocket_tls12"), protocol::tls,
       "TLS handshake ClientHello, record version 1.2"},
      {"corpus_tls_alert", kClient, read_case("edge_not_hello_alert_record"), protocol::tls,
       "TLS alert fatal handshake_failure (40)"},
      {"corpus_tls_cut_header", kClient, read_case("edge_truncated_record_header"), protocol::tls,
       "", false},
      {"corpus_pg_ssl_request", kClient, read_case("openssl_starttls_postgres"),
       protocol::postgres_ssl_request, "SSLRequest"},
      {"http_query_dropped", kClient,
       text("GET /search?q=s3cr3t&token=abc HTTP/1.1\r\nAuthorization: Basic czNjcjN0\r\n\r\n"),
       protocol::http1, "GET /search?... HTTP/1.1"},
      {"http_long_target", kClient, text("POST /" + std::string(200, 'a') + " HTTP/1.0\r\n\r\n"),
       protocol::http1, "POST /" + std::string(63, 'a') + "... HTTP/1.0"},
      {"http_target_beyond_line_limit", kClient, text("GET /" + std::string(5000, 'b')),
       protocol::http1, "GET /" + std::string(63, 'b') + "..."},
      {"http_open_line", kClient, text("GET /index.html HTTP/1."), protocol::http1,
       "GET /index.html HTTP/1.", false},
      {"http2_preface", kClient, text("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n") + bytes{0, 0, 0, 4},
       protocol::http2, "HTTP/2 connection preface"},
      {"pg_gssenc", kClient, be32(8) + be32(80877104), protocol::postgres, "GSSENCRequest"},
      {"pg_cancel", kClient, be32(16) + be32(80877102) + be32(4242) + be32(0xdeadbeef),
       protocol::postgres, "CancelRequest"},
      {"pg_startup", kClient,
       pg_startup({{"user", "app"},
                   {"database", "appdb"},
                   {"options", "-c password=s3cr3t"},
                   {"application_name", "psql"}}),
       protocol::postgres, "StartupMessage user=app database=appdb"},
      {"pg_password", kClient, pg_message('p', text("s3cr3t") + bytes{0}), protocol::postgres,
       "PasswordMessage (content withheld)"},
      {"redis_auth", kClient, text("*2\r\n$4\r\nAUTH\r\n$6\r\ns3cr3t\r\n"), protocol::redis,
       "AUTH"},
      {"redis_auth_user", kClient, text("*3\r\n$4\r\nauth\r\n$3\r\napp\r\n$6\r\ns3cr3t\r\n"),
       protocol::redis, "auth"},
      {"redis_hello_auth", kClient,
       text("*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$3\r\napp\r\n$6\r\ns3cr3t\r\n"),
       protocol::redis, "HELLO"},
      {"redis_inline_auth", kClient, text("AUTH s3cr3t\r\n"), protocol::redis, "AUTH"},
      {"redis_inline_get", kClient, text("GET key\r\n"), protocol::redis, "GET"},
      {"redis_inline_ping", kClient, text("ping\r\n"), protocol::redis, "PING"},
      {"proxy_v1", kClient, text("PROXY TCP4 1.2.3.4 5.6.7.8 111 222\r\n") + bytes{0x16, 3, 1},
       protocol::proxy_v1, "PROXY v1 TCP4 1.2.3.4:111 -> 5.6.7.8:222"},
      {"proxy_v1_tcp6", kClient, text("PROXY TCP6 2001:db8::1 ::1 1 2\r\n"), protocol::proxy_v1,
       "PROXY v1 TCP6 [2001:db8::1]:1 -> [::1]:2"},
      {"proxy_v1_malformed", kClient, text("PROXY TCP4 1.2.3.4 5.6.7.8 111\r\n"),
       protocol::proxy_v1, "malformed PROXY v1 header"},
      {"sslv2_hello", kClient,
       bytes{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10} + bytes(0x20, 7),
       protocol::tls, "SSLv2-format ClientHello, version 1.0"},
      {"client_binary", kClient, bytes{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, protocol::unknown,
       "binary: \\x01\\x02\\x03\\x04\\x05\\x06\\x07\\x08..."},
      {"client_text_word_only", kClient, text("PASS s3cr3t\r\n"), protocol::unknown, "text: PASS"},
      {"client_backslash", kClient, text("a\\b c"), protocol::unknown, "text: a\\x5cb"},
      {"empty", kClient, bytes{}, protocol::none, "", false},

      // ---- server to client ----
      {"tls_server_hello", kServer, bytes{22, 3, 3, 0, 90, 2, 0, 0, 86, 3, 3}, protocol::tls,
       "TLS handshake ServerHello, record version 1.2"},
      {"tls_server_alert", kServer, bytes{21, 3, 1, 0, 2, 2, 112}, protocol::tls,
       "TLS alert fatal unrecognized_name (112)"},
      {"http_status", kServer,
       text("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\n\r\n400 Bad Request"),
       protocol::http1, "HTTP/1.1 400 Bad Request"},
      {"http_status_no_reason", kServer, text("HTTP/1.0 204\r\n\r\n"), protocol::http1,
       "HTTP/1.0 204"},
      {"http2_settings", kServer,
       bytes{0, 0, 18, 4, 0, 0, 0, 0, 0} + bytes(18, 0) + bytes{0, 0, 0, 4, 1, 0, 0, 0, 0},
       protocol::http2, "HTTP/2 SETTINGS frame (3 settings)"},
      {"pg_answer_n", kServer, text("N"), protocol::postgres, "SSL/GSSENC not supported (N)",
       false},
      {"pg_answer_s", kServer, text("S"), protocol::postgres, "SSL accepted (S)", false},
      {"pg_error", kServer,
       pg_message('E', text("SFATAL") + bytes{0} + text("VFATAL") + bytes{0} + text("C28000") +
                           bytes{0} + text("M" + kPgHba) + bytes{0} + text("Fauth.c") + bytes{0} +
                           bytes{0}),
       protocol::postgres, ("FATAL 28000 " + kPgHba).substr(0, 120)},
      {"pg_error_short", kServer,
       pg_message('E', text("SFATAL") + bytes{0} + text("C3D000") + bytes{0} +
                           text("Mdatabase \"nope\" does not exist") + bytes{0} + bytes{0}),
       protocol::postgres, "FATAL 3D000 database \"nope\" does not exist"},
      {"pg_sasl", kServer, pg_message('R', be32(10) + text("SCRAM-SHA-256") + bytes{0, 0}),
       protocol::postgres, "AuthenticationSASL SCRAM-SHA-256"},
      {"pg_auth_ok", kServer, pg_message('R', be32(0)), protocol::postgres, "AuthenticationOk"},
      {"ssh_server", kServer, text("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6\r\n"), protocol::ssh,
       "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u6"},
      {"mysql_greeting", kServer,
       mysql_packet(bytes{0x0a} + text("8.0.36-0ubuntu0.22.04.1") + bytes{0} + bytes(40, 0x21)),
       protocol::mysql, "MySQL protocol 10, server 8.0.36-0ubuntu0.22.04.1"},
      {"mysql_error", kServer,
       mysql_packet(bytes{0xff, 0x6a, 0x04} +
                    text("Host '127.0.0.1' is not allowed to connect to this MySQL server")),
       protocol::mysql,
       "MySQL error 1130: Host '127.0.0.1' is not allowed to connect to this MySQL server"},
      {"mysql_error_state", kServer,
       mysql_packet(bytes{0xff, 0x15, 0x04} + text("#28000Access denied for user 'app'")),
       protocol::mysql, "MySQL error 1045 (28000): Access denied for user 'app'"},
      {"smtp", kServer, text("220 mail.example.test ESMTP Postfix (Debian/GNU)\r\n"),
       protocol::smtp, "220 mail.example.test ESMTP Postfix (Debian/GNU)"},
      {"smtp_plain_220", kServer, text("220 mail.example.test\r\n"), protocol::smtp,
       "220 mail.example.test"},
      {"smtp_refusal", kServer, text("554 mail.example.test ESMTP not accepting\r\n"),
       protocol::smtp, "554 mail.example.test ESMTP not accepting"},
      {"ftp_vsftpd", kServer, text("220 (vsFTPd 3.0.3)\r\n"), protocol::ftp, "220 (vsFTPd 3.0.3)"},
      {"ftp_multiline", kServer, text("220-ProFTPD Server ready\r\n220 more\r\n"), protocol::ftp,
       "220-ProFTPD Server ready"},
      {"imap", kServer, text("* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n"),
       protocol::imap, "* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready."},
      {"pop3", kServer, text("+OK Dovecot ready.\r\n"), protocol::pop3, "+OK Dovecot ready."},
      {"redis_ok", kServer, text("+OK\r\n"), protocol::redis, "+OK"},
      {"redis_noauth", kServer, text("-NOAUTH Authentication required.\r\n"), protocol::redis,
       "-NOAUTH Authentication required."},
      {"redis_echo_cut", kServer,
       text("-ERR unknown command 'FOO', with args beginning with: 's3cr3t' \r\n"), protocol::redis,
       "-ERR unknown command 'FOO'"},
      {"redis_bulk", kServer, text("$5\r\nhello\r\n"), protocol::redis, "RESP bulk string reply"},
      {"server_text", kServer, text("hello world\r\n"), protocol::unknown, "text: hello"},
      {"server_binary_newlines", kServer, text("\n\n"), protocol::unknown, "binary: \\x0a\\x0a",
       false},
      {"server_cr_lf_may_be_proxy_v2", kServer, text("\r\n"), protocol::proxy_v2, "PROXY v2 header",
       false},
  };
  return v;
}

INSTANTIATE_TEST_SUITE_P(Protocols, Detect, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<detect_case>& param_info) {
                           return std::string(param_info.param.name);
                         });

TEST(Detect, ProxyV2SummaryShowsAddressesAndAuthority) {
  std::array<std::uint8_t, 256> buf{};
  proxy_endpoint src;
  src.addr = {10, 1, 2, 3};
  src.addr_len = 4;
  src.port = 40000;
  proxy_endpoint dst = src;
  dst.addr = {10, 9, 8, 7};
  dst.port = 443;
  const std::size_t n = write_proxy_v2(
      src, dst, {.authority = "app.example.test", .unique_id = {}, .crc32c = true}, buf);
  ASSERT_GT(n, 0U);
  const bytes in = bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)) + bytes{22, 3};
  const detection d = detect_first_flight(in, kClient);
  EXPECT_EQ(d.proto, protocol::proxy_v2);
  EXPECT_TRUE(d.complete);
  EXPECT_EQ(str(d), "PROXY v2 TCP4 10.1.2.3:40000 -> 10.9.8.7:443 authority=app.example.test");
  expect_stable(in, kClient);
}

TEST(Detect, EveryCorpusCaseIsStableAndTheTlsOnesAreTls) {
  int tls_cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(
           std::filesystem::path(LINESMAN_TEST_DATA) / "corpus" / "cases")) {
    if (entry.path().extension() != ".bin") {
      continue;
    }
    const std::string name = entry.path().stem().string();
    const bytes in = read_case(name);
    expect_stable(in, kClient);
    expect_stable(in, kServer);
    const detection d = detect_first_flight(in, kClient);
    if (name.rfind("plain_", 0) != 0 && name != "openssl_starttls_postgres") {
      EXPECT_EQ(d.proto, protocol::tls) << name;
      ++tls_cases;
    }
  }
  EXPECT_GT(tls_cases, 30);
}

// Secrets in the bytes never reach the summary, in any direction, for any prefix.
TEST(Detect, SecretsNeverInSummaries) {
  const std::vector<bytes> carriers = {
      pg_message('p', text("s3cr3t") + bytes{0}),
      pg_startup({{"user", "app"}, {"password", "s3cr3t"}, {"options", "-c x=s3cr3t"}}),
      text("*2\r\n$4\r\nAUTH\r\n$6\r\ns3cr3t\r\n"),
      text("*3\r\n$6\r\nCONFIG\r\n$3\r\nSET\r\n$6\r\ns3cr3t\r\n"),
      text("AUTH s3cr3t\r\n"),
      text("auth default s3cr3t\r\n"),
      text("GET /?password=s3cr3t HTTP/1.1\r\n"),
      text("GET / HTTP/1.1\r\nAuthorization: Bearer s3cr3t\r\n\r\n"),
      text("AUTH PLAIN s3cr3t\r\n"),
      text("PASS s3cr3t\r\n"),
      text("a001 LOGIN user s3cr3t\r\n"),
      text("-ERR unknown command 'x', with args beginning with: 's3cr3t'\r\n"),
      text("HTTP/1.1 200 OK\r\nSet-Cookie: s3cr3t\r\n\r\n"),
      text("SSH-2.0-x\r\ns3cr3t\r\n"),
      text("220 ok\r\ns3cr3t\r\n"),
  };
  for (const bytes& in : carriers) {
    for (direction dir : {kClient, kServer}) {
      for (std::size_t n = 0; n <= in.size(); ++n) {
        const detection d = detect_first_flight(std::span(in).first(n), dir);
        ASSERT_EQ(d.summary.view().find("s3cr3t"), std::string_view::npos)
            << std::string(in.begin(), in.end()) << " -> " << d.summary.view();
        // Not even the start of it.
        ASSERT_EQ(d.summary.view().find("s3c"), std::string_view::npos)
            << std::string(in.begin(), in.end()) << " -> " << d.summary.view();
      }
    }
  }
}

TEST(Detect, SummaryTextEscapesAndBounds) {
  summary_text s;
  s.append("ok ");
  const bytes raw = {0x00, 0x7f, 0xff, '\\', 'z'};
  s.append_escaped(raw);
  EXPECT_EQ(s.view(), "ok \\x00\\x7f\\xff\\x5cz");
  s.clear();
  EXPECT_TRUE(s.empty());
  s.append(std::string(200, 'x'));
  EXPECT_EQ(s.view().size(), summary_text::kMaxSummary);
  // An escape never gets cut: 118 characters, then \x01 (4 characters) does not fit.
  summary_text t;
  t.append(std::string(118, 'y'));
  t.append(std::string_view("\x01", 1));
  EXPECT_EQ(t.view(), std::string(118, 'y'));
}

// Random and mutated input: summaries stay bounded and printable; complete answers are stable.
TEST(Detect, RandomInputIsBoundedPrintableAndStable) {
  std::mt19937 rng(20261126);
  std::vector<bytes> seeds;
  for (const detect_case& c : cases()) {
    seeds.push_back(c.in);
  }
  const std::string alphabet = "GETPOSTHTP/1.0 \r\n*$+-:SNER\x16\x03\x01\x15\x00\x0a\xff";
  for (int i = 0; i < 3000; ++i) {
    bytes in;
    if (i % 2 == 0 && !seeds.empty()) {
      in = seeds[rng() % seeds.size()];
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits && !in.empty(); ++e) {
        in[rng() % in.size()] = static_cast<std::uint8_t>(rng());
      }
      in.resize(rng() % (in.size() + 1));
    } else {
      const std::size_t len = rng() % 64;
      for (std::size_t k = 0; k < len; ++k) {
        in.push_back(rng() % 2 == 0 ? static_cast<std::uint8_t>(alphabet[rng() % alphabet.size()])
                                    : static_cast<std::uint8_t>(rng()));
      }
    }
    for (direction dir : {kClient, kServer}) {
      const detection d = detect_first_flight(in, dir);
      ASSERT_LE(d.summary.view().size(), summary_text::kMaxSummary);
      ASSERT_TRUE(printable(d.summary.view()));
      if (d.complete) {
        const detection longer = detect_first_flight(in + bytes{'\r', '\n', 0, 'x'}, dir);
        ASSERT_EQ(longer.proto, d.proto);
        ASSERT_EQ(str(longer), str(d));
      }
    }
  }
}

TEST(Detect, ProtocolNamesAreSchemaStrings) {
  EXPECT_EQ(protocol_name(protocol::postgres_ssl_request), "postgres_ssl_request");
  EXPECT_EQ(protocol_name(protocol::proxy_v2), "proxy_v2");
  EXPECT_EQ(protocol_name(protocol::none), "none");
}

}  // namespace
}  // namespace linesman::tls
