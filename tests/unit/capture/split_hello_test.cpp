// Tests for capture/hello_rewrite's split_records and segment_sizes: every corpus hello re-framed
// into N records still parses to the same ClientHello (tls::parse_client_hello reassembles), the
// records are shaped as asked, and impossible requests are refused with the flight untouched.
#include "capture/hello_rewrite.hpp"
#include "tests/unit/test_data.hpp"
#include "tls/client_hello.hpp"

#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace fs = std::filesystem;
namespace cap = linesman::capture;
namespace tls = linesman::tls;

namespace {

using linesman::test::kCorpusCases;

using linesman::test::slurp;

// record_lengths: the payload length of each TLS record in `b` (which must be whole records).
std::vector<std::size_t> record_lengths(const std::vector<std::uint8_t>& b) {
  std::vector<std::size_t> out;
  std::size_t at = 0;
  while (at + 5 <= b.size()) {
    const std::size_t n = static_cast<std::size_t>(b[at + 3]) << 8 | b[at + 4];
    out.push_back(n);
    at += 5 + n;
  }
  EXPECT_EQ(at, b.size());
  return out;
}

}  // namespace

TEST(SplitRecords, EveryCorpusHelloParsesTheSameInNRecords) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kCorpusCases)) {
    if (entry.path().extension() != ".bin") {
      continue;
    }
    SCOPED_TRACE(entry.path().filename().string());
    const auto bin = slurp(entry.path());
    std::vector<std::uint8_t> scratch(tls::kScratchLen);
    tls::client_hello before;
    if (tls::parse_client_hello(bin, scratch, before) != tls::hello_status::complete ||
        before.format != tls::hello_format::tls || before.tls_offset != 0 ||
        before.wire_len != bin.size()) {
      continue;  // not one plain TLS hello (SSLv2, SSLRequest prefix, trailing bytes)
    }
    const std::size_t sni_len = before.sni.size();
    for (const unsigned n : {2U, 3U, 4U, 7U}) {
      std::vector<std::uint8_t> out;
      std::string err;
      ASSERT_TRUE(cap::split_records(bin, n, 0, out, err)) << err;
      const auto lens = record_lengths(out);
      ASSERT_EQ(lens.size(), n);
      EXPECT_EQ(std::accumulate(lens.begin(), lens.end(), std::size_t{0}) + 5 * n, out.size());
      std::vector<std::uint8_t> s2(tls::kScratchLen);
      tls::client_hello after;
      ASSERT_EQ(tls::parse_client_hello(out, s2, after), tls::hello_status::complete);
      EXPECT_EQ(after.sni.size(), sni_len);
      EXPECT_EQ(after.extensions.size(), before.extensions.size());
    }
    ++checked;
  }
  EXPECT_GE(checked, 20);
}

TEST(SplitRecords, FirstRecordCarriesFirstBytes) {
  const auto bin = slurp(kCorpusCases / "curl_https_default.bin");
  std::vector<std::uint8_t> out;
  std::string err;
  ASSERT_TRUE(cap::split_records(bin, 2, 3, out, err)) << err;
  const auto lens = record_lengths(out);
  ASSERT_EQ(lens.size(), 2U);
  EXPECT_EQ(lens[0], 3U);   // the handshake header itself is split: type + 2 of its 3 length bytes
  EXPECT_EQ(out[5], 0x01);  // ClientHello
  EXPECT_EQ(out.size(), bin.size() + 5);
}

TEST(SplitRecords, ImpossibleRequestsAreRefused) {
  const auto bin = slurp(kCorpusCases / "curl_https_default.bin");
  std::vector<std::uint8_t> out{9};
  std::string err;
  EXPECT_FALSE(cap::split_records(bin, 0, 0, out, err));
  EXPECT_FALSE(cap::split_records(bin, 100000, 0, out, err));
  EXPECT_FALSE(cap::split_records(bin, 2, bin.size(), out, err));  // nothing left for record 2
  EXPECT_FALSE(cap::split_records(bin, 1, 3, out, err));           // first= needs 2 records
  const std::vector<std::uint8_t> half(bin.begin(), bin.begin() + 20);
  EXPECT_FALSE(cap::split_records(half, 2, 0, out, err));
  const std::vector<std::uint8_t> plain{'G', 'E', 'T', ' ', '/', '\r', '\n'};
  EXPECT_FALSE(cap::split_records(plain, 2, 0, out, err));
  EXPECT_EQ(out, std::vector<std::uint8_t>{9});  // untouched on every failure
  // A handshake of exactly 2^14 bytes still fits one record: re-framed, it is the same bytes.
  const auto big = slurp(kCorpusCases / "edge_single_record_16384.bin");
  ASSERT_TRUE(cap::split_records(big, 1, 0, out, err)) << err;
  EXPECT_EQ(out, big);
  ASSERT_TRUE(cap::split_records(big, 2, 16383, out, err)) << err;
  EXPECT_EQ(record_lengths(out), (std::vector<std::size_t>{16383, 1}));
}

TEST(SegmentSizes, EvenAndNeverEmpty) {
  EXPECT_EQ(cap::segment_sizes(10, 3), (std::vector<std::size_t>{4, 3, 3}));
  EXPECT_EQ(cap::segment_sizes(2, 5), (std::vector<std::size_t>{1, 1}));
  EXPECT_TRUE(cap::segment_sizes(0, 3).empty());
  EXPECT_EQ(cap::segment_sizes(517, 1), (std::vector<std::size_t>{517}));
}
