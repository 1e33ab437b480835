// Every corpus case (tests/data/corpus/cases) against its tshark-derived ground truth, delivered
// whole, in the case's own TCP chunks, and one byte at a time.
#include "tests/unit/test_data.hpp"
#include "tls/client_hello.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace linesman::tls {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using linesman::test::kCorpusCases;
using linesman::test::slurp;

// Where the corpus marks strict rejection as acceptable, the status we chose, and why:
// duplicate extensions are rejected (RFC 8446 4.2; Go's crypto/tls, which Traefik uses, and
// BoringSSL reject them too), a trailing-dot host name is read as sent (it is a naming issue, not
// a framing one, and Traefik matches HostSNI on it).
const std::map<std::string, hello_status> kStrictChoices = {
    {"edge_duplicate_sni_extension", hello_status::malformed},
    {"edge_sni_uppercase_trailing_dot", hello_status::complete},
};

std::string hex16(std::uint16_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "0x";
  for (int shift = 12; shift >= 0; shift -= 4) {
    s.push_back(kHex[(v >> shift) & 0xf]);
  }
  return s;
}

std::string hex_bytes(std::span<const std::uint8_t> b) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (std::uint8_t c : b) {
    s.push_back(kHex[c >> 4]);
    s.push_back(kHex[c & 0xf]);
  }
  return s;
}

// summarize: every field of a parsed hello as JSON, named like the corpus ground truth.
json summarize(const client_hello& h) {
  json j;
  j["sni_extension_present"] = h.sni_present;
  j["sni_hex"] = h.sni.empty() ? json(nullptr) : json(hex_bytes(h.sni));
  json all = json::array();
  for (const server_name& n : h.server_names) {
    if (n.name_type == 0) {
      all.push_back(std::string(n.name.begin(), n.name.end()));
    }
  }
  j["sni_all"] = all;
  if (h.alpn_present) {
    json hex = json::array();
    for (auto name : h.alpn) {
      hex.push_back(hex_bytes(name));
    }
    j["alpn_hex"] = hex;
  } else {
    j["alpn_hex"] = nullptr;
  }
  if (h.supported_versions_present) {
    json v = json::array();
    for (std::uint16_t x : h.supported_versions) {
      v.push_back(hex16(x));
    }
    j["supported_versions"] = v;
  } else {
    j["supported_versions"] = nullptr;
  }
  j["legacy_version"] = hex16(h.legacy_version);
  j["record_version"] = hex16(h.record_version);
  j["cipher_suites_count"] = h.cipher_suites.size();
  json exts = json::array();
  for (const extension& e : h.extensions) {
    exts.push_back(e.type);
  }
  j["extensions"] = exts;
  j["extensions_count"] = exts.size();
  const ja3_fingerprint j3 = ja3(h);
  j["ja3_full"] = j3.full;
  j["ja3"] = j3.md5;
  const ja4_fingerprint j4 = ja4(h);
  j["ja4"] = j4.ja4;
  j["ja4_r"] = j4.ja4_r;
  j["ja4_o"] = j4.ja4_o;
  j["ja4_ro"] = j4.ja4_ro;
  j["records"] = h.records;
  j["hello_bytes"] = h.wire_len;
  j["tls_offset"] = h.tls_offset;
  return j;
}

struct corpus_case {
  std::string name;
  std::vector<std::uint8_t> bytes;
  json meta;
};

std::vector<std::string> case_names() {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(kCorpusCases)) {
    if (entry.path().extension() == ".json") {
      names.push_back(entry.path().stem().string());
    }
  }
  std::ranges::sort(names);
  return names;
}

corpus_case load(const std::string& name) {
  corpus_case c;
  c.name = name;
  c.bytes = slurp(kCorpusCases / (name + ".bin"));
  std::ifstream f(kCorpusCases / (name + ".json"));
  c.meta = json::parse(f);
  return c;
}

hello_status expected_status(const corpus_case& c) {
  if (auto it = kStrictChoices.find(c.name); it != kStrictChoices.end()) {
    return it->second;
  }
  const std::string outcome = c.meta["ground_truth"]["outcome"];
  if (outcome == "ok") {
    return hello_status::complete;
  }
  if (outcome == "incomplete") {
    return hello_status::incomplete;
  }
  if (outcome == "plaintext") {
    return hello_status::not_tls;
  }
  // "malformed", and "not_client_hello" (TLS records that cannot start a handshake).
  return hello_status::malformed;
}

// parse_copy: parse an exact-size heap copy of `in`, so a sanitizer build sees any over-read.
hello_status parse_copy(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& holder,
                        std::vector<std::uint8_t>& scratch, client_hello& out) {
  holder.assign(in.begin(), in.end());
  return parse_client_hello(holder, scratch, out);
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, WholeMatchesGroundTruth) {
  const corpus_case c = load(GetParam());
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello h;
  const hello_status st = parse_client_hello(c.bytes, scratch, h);
  ASSERT_EQ(hello_status_name(st), hello_status_name(expected_status(c)));
  if (st != hello_status::complete) {
    return;
  }
  const json& gt = c.meta["ground_truth"];
  const json got = summarize(h);
  for (const char* key :
       {"sni_extension_present", "sni_hex", "sni_all", "alpn_hex", "supported_versions",
        "legacy_version", "record_version", "cipher_suites_count", "extensions", "extensions_count",
        "ja3_full", "ja3", "ja4", "ja4_r", "ja4_o", "ja4_ro", "records", "hello_bytes"}) {
    EXPECT_EQ(got[key], gt[key]) << key;
  }
  EXPECT_EQ(got["tls_offset"], c.meta["tls_offset"]);
  EXPECT_EQ(h.postgres_ssl_request, c.meta["tls_offset"] == 8);
  EXPECT_EQ(h.format, hello_format::tls);
  // The first host_name, as text, is the ground truth's sni.
  if (!gt["sni"].is_null()) {
    EXPECT_EQ(std::string(h.sni.begin(), h.sni.end()), gt["sni"].get<std::string>());
  }
  if (!gt["alpn"].is_null()) {
    std::vector<std::string> alpn;
    for (auto name : h.alpn) {
      alpn.emplace_back(name.begin(), name.end());
    }
    EXPECT_EQ(json(alpn), gt["alpn"]);
  }
  EXPECT_EQ(
      h.cipher_suites.size() - static_cast<std::size_t>(std::ranges::count_if(
                                   h.cipher_suites, [](std::uint16_t v) { return is_grease(v); })),
      gt["cipher_suites_count_excl_grease"].get<std::size_t>());
}

// groups_hex: a u16 list as the tshark section writes it ("0x001d"), or null when absent.
json groups_hex(bool present, const u16_list& list) {
  if (!present) {
    return nullptr;
  }
  json out = json::array();
  for (std::uint16_t g : list) {
    out.push_back(hex16(g));
  }
  return out;
}

TEST_P(CorpusTest, GroupsMatchTshark) {
  const corpus_case c = load(GetParam());
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello h;
  if (parse_client_hello(c.bytes, scratch, h) != hello_status::complete) {
    return;
  }
  const json& ch = c.meta["tshark"]["client_hello"];
  ASSERT_TRUE(ch.is_object()) << "a complete hello without tshark's dissection";
  EXPECT_EQ(groups_hex(h.supported_groups_present, h.supported_groups), ch["supported_groups"]);
  json shares = nullptr;
  if (h.key_share_present) {
    shares = json::array();
    for (const key_share_entry& e : h.key_shares) {
      shares.push_back(hex16(e.group));
    }
  }
  EXPECT_EQ(shares, ch["key_share_groups"]);
  // tshark 4.0 cannot dissect ECH (it lists the extension as unknown): only presence is checked.
  EXPECT_EQ(h.ech_present, !ch["ech"].is_null());
  EXPECT_EQ(h.ech_config_id >= 0, h.ech_present);
}

// The SNI arrives once, at one prefix length, and stays arrived: false before, true from there
// on, and that length is inside the hello.
TEST_P(CorpusTest, ServerNameArrivesAtOnePrefix) {
  const corpus_case c = load(GetParam());
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello whole;
  const bool complete = parse_client_hello(c.bytes, scratch, whole) == hello_status::complete;
  std::vector<std::uint8_t> holder;
  std::size_t first = 0;
  for (std::size_t k = 0; k <= c.bytes.size(); ++k) {
    holder.assign(c.bytes.begin(), c.bytes.begin() + static_cast<std::ptrdiff_t>(k));
    const bool arrived = server_name_arrived(holder, scratch);
    if (first == 0 && arrived) {
      first = k;
    }
    ASSERT_EQ(arrived, first != 0 && k >= first) << "prefix " << k;
  }
  if (complete && whole.format == hello_format::tls) {
    EXPECT_EQ(first != 0, whole.sni_present);
    EXPECT_LE(first, whole.tls_offset + whole.wire_len);
  }
}

TEST_P(CorpusTest, ChunkedDeliveryParsesLikeWhole) {
  const corpus_case c = load(GetParam());
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello whole;
  const hello_status whole_st = parse_client_hello(c.bytes, scratch, whole);
  const json whole_json = whole_st == hello_status::complete ? summarize(whole) : json();

  std::vector<std::uint8_t> received;
  std::vector<std::uint8_t> holder;
  std::vector<std::uint8_t> chunk_scratch(kScratchLen);
  std::size_t offset = 0;
  hello_status st = hello_status::incomplete;
  client_hello h;
  const auto& chunks = c.meta["chunks"];
  ASSERT_FALSE(chunks.empty());
  for (std::size_t i = 0; i < chunks.size(); ++i) {
    const std::size_t n = chunks[i].get<std::size_t>();
    ASSERT_LE(offset + n, c.bytes.size());
    received.insert(received.end(), c.bytes.begin() + static_cast<std::ptrdiff_t>(offset),
                    c.bytes.begin() + static_cast<std::ptrdiff_t>(offset + n));
    offset += n;
    st = parse_copy(received, holder, chunk_scratch, h);
    if (i + 1 < chunks.size() && whole_st == hello_status::complete) {
      ASSERT_EQ(hello_status_name(st), "incomplete") << "after chunk " << i;
    }
  }
  EXPECT_EQ(offset, c.bytes.size());
  ASSERT_EQ(hello_status_name(st), hello_status_name(whole_st));
  if (st == hello_status::complete) {
    EXPECT_EQ(summarize(h), whole_json);
  }
}

TEST_P(CorpusTest, EveryPrefixIsIncompleteOrTheFinalAnswer) {
  const corpus_case c = load(GetParam());
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello whole;
  const hello_status whole_st = parse_client_hello(c.bytes, scratch, whole);
  std::vector<std::uint8_t> holder;
  client_hello h;
  bool decided = false;
  for (std::size_t k = 0; k < c.bytes.size(); ++k) {
    const hello_status st =
        parse_copy(std::span<const std::uint8_t>(c.bytes).first(k), holder, scratch, h);
    if (whole_st == hello_status::complete) {
      // Live and crafted ok cases end exactly with the hello, so every proper prefix waits.
      ASSERT_EQ(hello_status_name(st), "incomplete") << "prefix " << k;
    } else if (st != hello_status::incomplete) {
      // A verdict, once given, is final.
      ASSERT_EQ(hello_status_name(st), hello_status_name(whole_st)) << "prefix " << k;
      decided = true;
    } else {
      ASSERT_FALSE(decided) << "prefix " << k << " went back to incomplete";
    }
  }
}

std::string test_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(case_names()), test_name);

TEST(Corpus, HasTheCasesWeExpect) {
  // A missing corpus must fail loudly rather than run zero parameterized tests.
  EXPECT_GE(case_names().size(), 40U);
}

// The digests behind JA3 and JA4 are kept per thread and reused when a text repeats, and so are
// fingerprints()' results when their inputs repeat (tls/fingerprint.cpp, digest_memo and
// result_memo, a few entries each, replaced in turn). Every
// corpus hello, fingerprinted in an order that makes both hits and replacements (ascending,
// then descending with each hello twice in a row), still gives tshark's JA3 and JA4.
TEST(Corpus, RepeatedFingerprintsStayExact) {
  std::vector<corpus_case> cases;
  for (const std::string& name : case_names()) {
    corpus_case c = load(name);
    if (expected_status(c) == hello_status::complete) {
      cases.push_back(std::move(c));
    }
  }
  ASSERT_GE(cases.size(), 20U);  // more distinct hellos than the memo holds
  std::vector<std::size_t> order(cases.size());
  std::iota(order.begin(), order.end(), 0);
  for (std::size_t i = cases.size(); i-- > 0;) {
    order.push_back(i);
    order.push_back(i);
  }
  std::vector<std::uint8_t> scratch(kScratchLen);
  for (const std::size_t i : order) {
    const corpus_case& c = cases[i];
    client_hello h;
    ASSERT_EQ(parse_client_hello(c.bytes, scratch, h), hello_status::complete) << c.name;
    const json& gt = c.meta["ground_truth"];
    EXPECT_EQ(ja3(h).md5, gt["ja3"].get<std::string>()) << c.name;
    const ja4_fingerprint j4 = ja4(h);
    EXPECT_EQ(j4.ja4, gt["ja4"].get<std::string>()) << c.name;
    EXPECT_EQ(j4.ja4_o, gt["ja4_o"].get<std::string>()) << c.name;
    const hello_fingerprints f = fingerprints(h);
    EXPECT_EQ(f.ja3_text(), gt["ja3"].get<std::string>()) << c.name;
    EXPECT_EQ(f.ja4_text(), gt["ja4"].get<std::string>()) << c.name;
  }
}

// Firefox's hello: X25519MLKEM768 first, GREASE ECH last; its server_name extension (the first,
// 21 bytes of body) ends 139 bytes into the wire: 5 record + 4 handshake + 2 version + 32 random
// + 33 session id + 34 cipher suites + 2 compression + 2 extensions length + 4 + 21.
TEST(Corpus, FirefoxPostQuantumHello) {
  const corpus_case c = load("firefox_sni");
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello h;
  ASSERT_EQ(parse_client_hello(c.bytes, scratch, h), hello_status::complete);
  std::vector<std::string> shares;
  for (const key_share_entry& e : h.key_shares) {
    shares.emplace_back(group_name(e.group).view());
  }
  EXPECT_EQ(shares, (std::vector<std::string>{"X25519MLKEM768", "x25519", "secp256r1"}));
  EXPECT_EQ(h.key_shares.begin()->key.size(), 1216U);
  EXPECT_TRUE(is_post_quantum_group(h.key_shares.begin()->group));
  EXPECT_TRUE(h.ech_present);
  EXPECT_GE(h.ech_config_id, 0);
  const std::span<const std::uint8_t> all(c.bytes);
  EXPECT_FALSE(server_name_arrived(all.first(100), scratch));
  EXPECT_FALSE(server_name_arrived(all.first(138), scratch));
  EXPECT_TRUE(server_name_arrived(all.first(139), scratch));
}

}  // namespace
}  // namespace linesman::tls
