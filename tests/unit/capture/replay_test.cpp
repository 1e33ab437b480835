// Tests for capture/hello_rewrite (SNI rewrite checked with tls::parse_client_hello on every
// corpus hello) and the replay's input loading and write planning.
#include "capture/replay.hpp"

#include "capture/hello_rewrite.hpp"
#include "tests/unit/test_data.hpp"
#include "tls/client_hello.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
namespace cap = linesman::capture;
namespace tls = linesman::tls;

namespace {

using linesman::test::kCorpusCases;
const fs::path kPcaps = fs::path(LINESMAN_TEST_DATA) / "corpus" / "pcap";

using linesman::test::slurp;

struct parsed {
  tls::hello_status status;
  std::vector<std::uint8_t> scratch = std::vector<std::uint8_t>(tls::kScratchLen);
  tls::client_hello hello;
};

std::string text(std::span<const std::uint8_t> s) { return {s.begin(), s.end()}; }

std::vector<std::string> alpn_of(const tls::client_hello& h) {
  std::vector<std::string> out;
  for (const auto& p : h.alpn) {
    out.push_back(text(p));
  }
  return out;
}

std::vector<std::uint16_t> ext_types(const tls::client_hello& h) {
  std::vector<std::uint16_t> out;
  for (const auto& e : h.extensions) {
    out.push_back(e.type);
  }
  return out;
}

}  // namespace

TEST(RewriteSni, EveryCorpusHelloTakesANewName) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kCorpusCases)) {
    if (entry.path().extension() != ".bin") {
      continue;
    }
    SCOPED_TRACE(entry.path().filename().string());
    auto bin = slurp(entry.path());
    parsed before;
    before.status = tls::parse_client_hello(bin, before.scratch, before.hello);
    std::vector<std::uint8_t> out;
    std::string err;
    const std::string name = "replaced.example.test";
    bool ok = cap::rewrite_sni(bin, name, out, err);
    if (before.status != tls::hello_status::complete ||
        before.hello.format != tls::hello_format::tls) {
      EXPECT_FALSE(ok);
      EXPECT_FALSE(err.empty());
      continue;
    }
    ASSERT_TRUE(ok) << err;
    parsed after;
    after.status = tls::parse_client_hello(out, after.scratch, after.hello);
    ASSERT_EQ(after.status, tls::hello_status::complete);
    EXPECT_EQ(text(after.hello.sni), name);
    EXPECT_EQ(after.hello.tls_offset, before.hello.tls_offset);
    EXPECT_EQ(after.hello.cipher_suites.size(), before.hello.cipher_suites.size());
    EXPECT_EQ(alpn_of(after.hello), alpn_of(before.hello));
    EXPECT_EQ(after.hello.records, 1);
    auto types_before = ext_types(before.hello);
    auto types_after = ext_types(after.hello);
    if (before.hello.sni_present) {
      // Same extensions in the same order (a duplicate server_name is folded into one).
      std::vector<std::uint16_t> dedup;
      bool seen = false;
      for (auto t : ext_types(before.hello)) {
        if (t == 0) {
          if (seen) {
            continue;
          }
          seen = true;
        }
        dedup.push_back(t);
      }
      EXPECT_EQ(types_after, dedup);
    } else {
      ASSERT_FALSE(types_after.empty());
      EXPECT_EQ(types_after.front(), 0);  // inserted first
      EXPECT_EQ(std::vector<std::uint16_t>(types_after.begin() + 1, types_after.end()),
                types_before);
    }
    // Padded hellos (curl, Python, NSS: 517 bytes) keep their size: padding absorbs the change.
    bool padded = std::find(types_before.begin(), types_before.end(), 0x15) != types_before.end();
    if (padded && before.hello.records == 1 && before.hello.sni_present) {
      EXPECT_EQ(out.size(), bin.size());
    }
    // Bytes before and after the hello are untouched.
    EXPECT_TRUE(std::equal(bin.begin(), bin.begin() + static_cast<long>(before.hello.tls_offset),
                           out.begin()));
    ++checked;

    // Removing the SNI.
    ASSERT_TRUE(cap::rewrite_sni(bin, "", out, err)) << err;
    parsed removed;
    ASSERT_EQ(tls::parse_client_hello(out, removed.scratch, removed.hello),
              tls::hello_status::complete);
    EXPECT_FALSE(removed.hello.sni_present);
  }
  EXPECT_GE(checked, 25);
}

TEST(RewriteSni, LengthsByHandAndLimits) {
  auto bin = slurp(kCorpusCases / "openssl_tls13_sni.bin");  // 250 bytes, no padding extension
  std::vector<std::uint8_t> out;
  std::string err;
  const std::string name(200, 'a');
  ASSERT_TRUE(cap::rewrite_sni(bin, name, out, err)) << err;
  // Record length and handshake length agree with the bytes.
  ASSERT_GE(out.size(), 9U);
  EXPECT_EQ(out[0], 22);
  EXPECT_EQ(static_cast<std::size_t>(out[3] << 8 | out[4]), out.size() - 5);
  EXPECT_EQ(out[5], 1);
  EXPECT_EQ(static_cast<std::size_t>(out[6] << 16 | out[7] << 8 | out[8]), out.size() - 9);
  parsed p;
  ASSERT_EQ(tls::parse_client_hello(out, p.scratch, p.hello), tls::hello_status::complete);
  EXPECT_EQ(text(p.hello.sni), name);
  // The growth is exactly the name's growth.
  parsed orig;
  ASSERT_EQ(tls::parse_client_hello(bin, orig.scratch, orig.hello), tls::hello_status::complete);
  EXPECT_EQ(out.size(), bin.size() + name.size() - orig.hello.sni.size());

  EXPECT_TRUE(cap::rewrite_sni(bin, std::string(255, 'b'), out, err));
  EXPECT_FALSE(cap::rewrite_sni(bin, std::string(256, 'b'), out, err));
  EXPECT_NE(err.find("255"), std::string::npos);
  auto plain = slurp(kCorpusCases / "plain_curl_http11_get.bin");
  EXPECT_FALSE(cap::rewrite_sni(plain, "x.test", out, err));
}

TEST(ReplayInput, CapturesGiveTheFirstFlight) {
  for (const auto& entry : fs::directory_iterator(kCorpusCases)) {
    if (entry.path().extension() != ".json") {
      continue;
    }
    auto meta = nlohmann::json::parse(std::ifstream(entry.path()));
    SCOPED_TRACE(meta["name"].get<std::string>());
    auto bin = slurp(fs::path(entry.path()).replace_extension(".bin"));
    cap::replay_input in;
    std::string err;
    ASSERT_TRUE(cap::load_replay_input(kCorpusCases.parent_path() / meta["pcap"].get<std::string>(),
                                       0, in, err))
        << err;
    EXPECT_EQ(in.format, "pcap");
    // The first flight of a capture is the case's .bin (the client's alert after the server
    // closed, for instance, is not part of it). Truncated and not-hello cases have no
    // complete hello: their first flight is what was sent before any reply, the whole .bin too.
    EXPECT_EQ(in.bytes, bin);

    cap::replay_input raw;
    ASSERT_TRUE(
        cap::load_replay_input(fs::path(entry.path()).replace_extension(".bin"), 0, raw, err));
    EXPECT_EQ(raw.format, "raw");
    EXPECT_EQ(raw.bytes, bin);
    ASSERT_EQ(raw.segments.size(), 1U);
  }
  cap::replay_input in;
  std::string err;
  EXPECT_FALSE(cap::load_replay_input(kCorpusCases / "does-not-exist.bin", 0, in, err));
  EXPECT_NE(err.find("does-not-exist.bin"), std::string::npos);
}

TEST(ReplayPlan, SegmentationChunksAndWaits) {
  cap::replay_input pg;
  std::string err;
  ASSERT_TRUE(cap::load_replay_input(kPcaps / "openssl_starttls_postgres.pcap", 0, pg, err)) << err;
  cap::replay_options o;
  auto plan = cap::plan_writes(pg, pg.bytes.size(), o);
  ASSERT_EQ(plan.size(), 2U);
  EXPECT_EQ(plan[0].len, 8U);
  EXPECT_EQ(plan[0].wait_peer_bytes, 0U);
  EXPECT_EQ(plan[1].len, pg.bytes.size() - 8);
  EXPECT_EQ(plan[1].wait_peer_bytes, 1U);  // the server's 'S'

  // Whole still splits where the client waited for the server.
  o.chunks = cap::chunking::whole;
  plan = cap::plan_writes(pg, pg.bytes.size(), o);
  ASSERT_EQ(plan.size(), 2U);
  EXPECT_EQ(plan[1].wait_peer_bytes, 1U);

  // Byte by byte.
  o.chunks = cap::chunking::sizes;
  o.chunk_sizes = {1};
  plan = cap::plan_writes(pg, pg.bytes.size(), o);
  EXPECT_EQ(plan.size(), pg.bytes.size());
  EXPECT_EQ(plan[8].wait_peer_bytes, 1U);

  cap::replay_input raw;
  ASSERT_TRUE(cap::load_replay_input(kCorpusCases / "curl_https_default.bin", 0, raw, err));
  o.chunk_sizes = {100, 417};
  plan = cap::plan_writes(raw, raw.bytes.size(), o);
  ASSERT_EQ(plan.size(), 2U);
  EXPECT_EQ(plan[0].len, 100U);
  EXPECT_EQ(plan[1].len, 417U);
  o.chunk_sizes = {200};
  plan = cap::plan_writes(raw, raw.bytes.size(), o);
  ASSERT_EQ(plan.size(), 3U);
  EXPECT_EQ(plan[2].len, 117U);

  // Captured segmentation of a crafted 1-byte capture, with timing capped.
  cap::replay_input onebyte;
  ASSERT_TRUE(cap::load_replay_input(kPcaps / "edge_tcp_1byte_openssl_alpn.synthetic.pcap", 0,
                                     onebyte, err));
  o.chunks = cap::chunking::captured;
  o.timing = true;
  o.max_gap = std::chrono::milliseconds(1);
  plan = cap::plan_writes(onebyte, onebyte.bytes.size(), o);
  EXPECT_EQ(plan.size(), 340U);
  for (const auto& w : plan) {
    EXPECT_EQ(w.len, 1U);
    EXPECT_LE(w.gap, std::chrono::milliseconds(1));
  }
  // A rewritten hello longer than the capture: the extra bytes ride on the last write.
  plan = cap::plan_writes(onebyte, onebyte.bytes.size() + 10, o);
  EXPECT_EQ(plan.back().len, 11U);
}
