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
  EXPECT_EQ(obs.legacy_version, tls::kTls12);
  EXPECT_EQ(obs.legacy_version_name().view(), "1.2");
  EXPECT_EQ(version_names(obs.supported_versions),
            (std::vector<std::string>{"1.3", "1.2"}));  // GREASE gone
  EXPECT_FALSE(obs.versions_truncated());
  EXPECT_EQ(obs.cipher_count, 6);  // as on the wire, GREASE included
  EXPECT_EQ(obs.ja3.view(), tls::ja3(h).md5);
  EXPECT_EQ(obs.ja4.view(), tls::ja4(h).ja4);
  EXPECT_EQ(obs.ja3.view().size(), tls::kJa3Size);
  EXPECT_EQ(obs.ja4.view().size(), tls::kJa4Size);
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
  EXPECT_TRUE(obs.ja3.empty());
  EXPECT_TRUE(obs.ja4.empty());
  EXPECT_FALSE(obs.legacy_version.has_value());
  EXPECT_EQ(obs.hello_records, 2);
  EXPECT_EQ(obs.hello_reads, 2);
  // Written as before the record kept codes: empty strings and lists, not "0x0000".
  const nlohmann::json j = obs;
  EXPECT_EQ(j["legacy_version"], "");
  EXPECT_EQ(j["supported_versions"], nlohmann::json::array());
  EXPECT_EQ(j["ja3"], "");
  EXPECT_EQ(j["ja4"], "");
  EXPECT_FALSE(j.contains("versions_truncated"));
}

// parse_with_versions: `typical` with a supported_versions extension listing `versions`.
tls::client_hello parse_with_versions(const std::vector<std::uint16_t>& versions, bytes& wire,
                                      bytes& scratch) {
  tls::testing::hello_builder b = tls::testing::typical();
  bytes list;
  for (std::uint16_t v : versions) {
    tls::testing::put_u16(list, v);
  }
  b.extensions[7].second = tls::testing::u8_prefixed(list);
  wire = b.wire();
  scratch.assign(tls::kScratchLen, 0);
  tls::client_hello h;
  EXPECT_EQ(tls::parse_client_hello(wire, scratch, h), tls::hello_status::complete);
  return h;
}

TEST(ObserveClientHello, UnknownVersionCodesAreWrittenInHex) {
  bytes wire;
  bytes scratch;
  tls::client_hello h = parse_with_versions({0x7f17, 0x0304, 0xfefd}, wire, scratch);
  h.legacy_version = 0x0a0a;  // GREASE as legacy_version: kept and written in hex
  const tls_obs obs = observe_client_hello(h, tls::hello_status::complete);
  const nlohmann::json j = obs;
  EXPECT_EQ(j["legacy_version"], "0x0a0a");
  EXPECT_EQ(j["supported_versions"], nlohmann::json({"0x7f17", "1.3", "0xfefd"}));
}

TEST(ObserveClientHello, MoreVersionsThanARecordKeepsAreCutAndSaid) {
  // A hostile hello may list up to 127 versions (a one-byte length): the record keeps the first
  // version_list::kMax non-GREASE ones and says it cut the list, as it does for groups.
  std::vector<std::uint16_t> versions;
  for (std::uint16_t i = 0; i < 127; ++i) {
    versions.push_back(i % 3 == 0 ? 0x0a0a : static_cast<std::uint16_t>(0x7f00 + i));
  }
  bytes wire;
  bytes scratch;
  const tls::client_hello h = parse_with_versions(versions, wire, scratch);
  const tls_obs obs = observe_client_hello(h, tls::hello_status::complete);
  EXPECT_TRUE(obs.versions_truncated());
  ASSERT_EQ(obs.supported_versions.view().size(), version_list::kMax);
  EXPECT_EQ(version_names(obs.supported_versions).front(), "0x7f01");
  const nlohmann::json j = obs;
  EXPECT_EQ(j["versions_truncated"], true);
  EXPECT_EQ(j["supported_versions"].size(), version_list::kMax);
  EXPECT_FALSE(j.contains("groups_truncated"));

  // Exactly kMax is not cut.
  versions.assign(version_list::kMax, 0x0304);
  versions.push_back(0x1a1a);  // GREASE is dropped before it is counted
  const tls::client_hello full = parse_with_versions(versions, wire, scratch);
  const tls_obs kept = observe_client_hello(full, tls::hello_status::complete);
  EXPECT_FALSE(kept.versions_truncated());
  EXPECT_EQ(kept.supported_versions.view().size(), version_list::kMax);
}

// The observations are what an idle TLS connection keeps for its whole life (issue 13 packed them
// from 288 and 240 bytes): they may not grow back unnoticed.
static_assert(sizeof(tls_obs) <= 248, "tls_obs grew: an idle TLS connection keeps it");
static_assert(sizeof(server_tls_obs) <= 24, "server_tls_obs grew: an idle TLS connection keeps it");

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
