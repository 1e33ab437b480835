// observe_client_hello: the access log's `tls` object from a parsed ClientHello.
#include "proxy/observe_client.hpp"

#include "../tls/hello_builder.hpp"
#include "tls/fingerprint.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

using tls::testing::bytes;

TEST(EscapeBytes, PrintableAsIsEverythingElseAsHex) {
  const bytes in = {'a', '.', 'B', 0x00, 0x1f, 0x7f, 0xff, '\\', ' ', '~'};
  EXPECT_EQ(escape_bytes(in), "a.B\\x00\\x1f\\x7f\\xff\\\\ ~");
  EXPECT_EQ(escape_bytes({}), "");
}

TEST(ObserveClientHello, CompleteHelloFillsEveryField) {
  const bytes wire = tls::testing::typical().wire({100});  // two records
  bytes scratch(tls::kScratchLen);
  tls::client_hello h;
  const tls::hello_status st = tls::parse_client_hello(wire, scratch, h);
  ASSERT_EQ(st, tls::hello_status::complete);
  const tls_obs obs = observe_client_hello(h, st, 3);
  EXPECT_TRUE(obs.complete);
  ASSERT_TRUE(obs.sni.has_value());
  EXPECT_EQ(*obs.sni, "www.example.test");
  EXPECT_EQ(obs.alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(obs.legacy_version, "1.2");
  EXPECT_EQ(obs.supported_versions, (std::vector<std::string>{"1.3", "1.2"}));  // GREASE gone
  EXPECT_EQ(obs.cipher_count, 6);  // as on the wire, GREASE included
  EXPECT_EQ(obs.ja3, tls::ja3(h).md5);
  EXPECT_EQ(obs.ja4, tls::ja4(h).ja4);
  EXPECT_TRUE(obs.ech);
  EXPECT_EQ(obs.hello_bytes, tls::testing::typical().handshake().size());
  EXPECT_EQ(obs.hello_records, 2);
  EXPECT_EQ(obs.hello_reads, 3);
  const nlohmann::json j = obs;
  EXPECT_EQ(j["sni"], "www.example.test");
  EXPECT_EQ(j["complete"], true);
}

TEST(ObserveClientHello, NonPrintableSniAndAlpnAreEscaped) {
  tls::testing::hello_builder b = tls::testing::typical();
  b.extensions[1].second = tls::testing::sni_body({std::string("bad\x01\xfehost", 9)});
  b.extensions[5].second = tls::testing::alpn_body({std::string("\x0ah2", 3)});
  const bytes wire = b.wire();
  bytes scratch(tls::kScratchLen);
  tls::client_hello h;
  const tls::hello_status st = tls::parse_client_hello(wire, scratch, h);
  ASSERT_EQ(st, tls::hello_status::complete);
  const tls_obs obs = observe_client_hello(h, st);
  EXPECT_EQ(obs.sni.value_or(""), "bad\\x01\\xfehost");
  EXPECT_EQ(obs.alpn, std::vector<std::string>{"\\x0ah2"});
}

TEST(ObserveClientHello, IncompleteHelloSaysSoAndNothingMore) {
  const bytes wire = tls::testing::typical().wire({100});
  const bytes part(wire.begin(), wire.begin() + 120);
  bytes scratch(tls::kScratchLen);
  tls::client_hello h;
  const tls::hello_status st = tls::parse_client_hello(part, scratch, h);
  ASSERT_EQ(st, tls::hello_status::incomplete);
  const tls_obs obs = observe_client_hello(h, st, 2);
  EXPECT_FALSE(obs.complete);
  EXPECT_FALSE(obs.sni.has_value());
  EXPECT_TRUE(obs.ja4.empty());
  EXPECT_EQ(obs.hello_records, 2);
  EXPECT_EQ(obs.hello_reads, 2);
}

TEST(ObserveClientHello, NoSniIsNull) {
  tls::testing::hello_builder b = tls::testing::typical();
  b.extensions.erase(b.extensions.begin() + 1);
  const bytes wire = b.wire();
  bytes scratch(tls::kScratchLen);
  tls::client_hello h;
  const tls::hello_status st = tls::parse_client_hello(wire, scratch, h);
  ASSERT_EQ(st, tls::hello_status::complete);
  const nlohmann::json j = observe_client_hello(h, st);
  EXPECT_TRUE(j["sni"].is_null());
}

}  // namespace
}  // namespace linesman::proxy
