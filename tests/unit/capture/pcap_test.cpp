// Tests for capture/pcap_reader and capture/pcapng_writer: the reader against the corpus
// captures (made by tcpdump/tshark and by the corpus crafter), the writer's files read back, and
// the format variants the reader must accept, built from the writer's frames.
#include "capture/pcap_reader.hpp"
#include "capture/pcapng_writer.hpp"
#include "tests/unit/test_data.hpp"

#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace fs = std::filesystem;
using linesman::capture::direction;
namespace cap = linesman::capture;

namespace {

const fs::path kCorpus = fs::path(LINESMAN_TEST_DATA) / "corpus";

using linesman::test::slurp;

// temp_dir: a fresh directory removed at the end of the test.
struct temp_dir {
  fs::path path;
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "linesman-capture-XXXXXX").string();
    path = ::mkdtemp(tmpl.data());
  }
  ~temp_dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::uint8_t> random_bytes(std::size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> v(n);
  for (auto& b : v) {
    b = static_cast<std::uint8_t>(rng());
  }
  return v;
}

asio::ip::tcp::endpoint ep(const char* ip, std::uint16_t port) {
  return {asio::ip::make_address(ip), port};
}

// frames_of: the Ethernet frames (and timestamps in microseconds) of a little-endian pcapng
// written by our writer. Test-side walker, independent of the reader under test.
struct frame {
  std::vector<std::uint8_t> data;
  std::uint64_t ts_us;
};
std::uint32_t le32(const std::vector<std::uint8_t>& b, std::size_t at) {
  return static_cast<std::uint32_t>(b.at(at)) | static_cast<std::uint32_t>(b.at(at + 1)) << 8 |
         static_cast<std::uint32_t>(b.at(at + 2)) << 16 |
         static_cast<std::uint32_t>(b.at(at + 3)) << 24;
}
std::vector<frame> frames_of(const std::vector<std::uint8_t>& file) {
  std::vector<frame> out;
  std::size_t at = 0;
  while (at + 12 <= file.size()) {
    std::uint32_t type = le32(file, at);
    std::uint32_t len = le32(file, at + 4);
    EXPECT_EQ(le32(file, at + len - 4), len);
    if (type == 6) {
      std::uint64_t ts = std::uint64_t{le32(file, at + 12)} << 32 | le32(file, at + 16);
      std::uint32_t cap_len = le32(file, at + 20);
      auto first = file.begin() + static_cast<long>(at + 28);
      out.push_back({std::vector<std::uint8_t>(first, first + cap_len), ts});
    }
    at += len;
  }
  EXPECT_EQ(at, file.size());
  return out;
}

std::uint16_t ones_sum(const std::uint8_t* p, std::size_t n, std::uint32_t acc = 0) {
  for (std::size_t i = 0; i + 1 < n; i += 2) {
    acc += static_cast<std::uint32_t>(p[i] << 8 | p[i + 1]);
  }
  if (n % 2 == 1) {
    acc += static_cast<std::uint32_t>(p[n - 1] << 8);
  }
  while (acc >> 16) {
    acc = (acc & 0xffff) + (acc >> 16);
  }
  return static_cast<std::uint16_t>(acc);
}

// check_checksums: every frame's IPv4 header checksum and TCP checksum verify (sum 0xffff).
void check_checksums(const std::vector<frame>& frames) {
  for (const frame& f : frames) {
    const std::uint8_t* p = f.data.data();
    ASSERT_GE(f.data.size(), 14U + 20U + 20U);
    std::uint16_t ethertype = static_cast<std::uint16_t>(p[12] << 8 | p[13]);
    const std::uint8_t* ip = p + 14;
    std::uint32_t pseudo = 0;
    const std::uint8_t* tcp = nullptr;
    std::size_t tcp_len = 0;
    if (ethertype == 0x0800) {
      EXPECT_EQ(ones_sum(ip, 20), 0xffff) << "IPv4 header checksum";
      std::size_t total = static_cast<std::size_t>(ip[2] << 8 | ip[3]);
      EXPECT_EQ(total + 14, f.data.size());
      tcp = ip + 20;
      tcp_len = total - 20;
      pseudo = ones_sum(ip + 12, 8);
    } else {
      ASSERT_EQ(ethertype, 0x86DD);
      tcp = ip + 40;
      tcp_len = static_cast<std::size_t>(ip[4] << 8 | ip[5]);
      EXPECT_EQ(tcp_len + 54, f.data.size());
      pseudo = ones_sum(ip + 8, 32);
    }
    pseudo += 6 + static_cast<std::uint32_t>(tcp_len);
    EXPECT_EQ(ones_sum(tcp, tcp_len, pseudo), 0xffff) << "TCP checksum";
  }
}

// write_conversation: a capture with interleaved data both ways, then FINs.
struct conversation {
  std::vector<std::uint8_t> c2s;
  std::vector<std::uint8_t> s2c;
};
conversation write_conversation(const fs::path& file, const asio::ip::tcp::endpoint& client,
                                const asio::ip::tcp::endpoint& server, std::uint64_t limit) {
  conversation conv;
  std::error_code ec;
  auto t0 = cap::clock::now();
  auto rec = cap::recorder::open(file, client, server, limit, ec, t0);
  EXPECT_TRUE(rec) << ec.message();
  if (!rec) {
    return conv;
  }
  auto hello = random_bytes(517, 1);
  auto reply = random_bytes(40000, 2);  // spans 3 segments of 16 KiB
  auto more = random_bytes(1000, 3);
  rec->data(direction::client_to_server, hello, t0 + std::chrono::milliseconds(1));
  rec->data(direction::server_to_client, reply, t0 + std::chrono::milliseconds(2));
  rec->data(direction::client_to_server, more, t0 + std::chrono::milliseconds(3));
  rec->fin(direction::client_to_server, t0 + std::chrono::milliseconds(4));
  rec->fin(direction::server_to_client, t0 + std::chrono::milliseconds(5));
  rec->close();
  EXPECT_FALSE(rec->failed());
  conv.c2s = hello;
  conv.c2s.insert(conv.c2s.end(), more.begin(), more.end());
  conv.s2c = reply;
  return conv;
}

}  // namespace

TEST(PcapReader, CorpusClientStreamsMatchTheBinFiles) {
  int checked = 0;
  for (const auto& entry : fs::directory_iterator(kCorpus / "cases")) {
    if (entry.path().extension() != ".json") {
      continue;
    }
    auto meta = nlohmann::json::parse(std::ifstream(entry.path()));
    if (!meta.contains("pcap") || meta["pcap"].is_null()) {
      continue;
    }
    SCOPED_TRACE(meta["name"].get<std::string>());
    auto bin = slurp(fs::path(entry.path()).replace_extension(".bin"));
    cap::tcp_stream s;
    std::string err;
    ASSERT_TRUE(cap::read_tcp_stream_file(kCorpus / meta["pcap"].get<std::string>(), {}, s, err))
        << err;
    ASSERT_GE(s.client.bytes.size(), bin.size());
    EXPECT_TRUE(std::equal(bin.begin(), bin.end(), s.client.bytes.begin()));
    if (meta.value("bin_matches_pcap_stream", false)) {
      EXPECT_EQ(s.client.bytes.size(), meta["pcap_client_stream_bytes"].get<std::size_t>());
    } else {
      EXPECT_EQ(s.client.bytes, bin);
      // Crafted captures deliver the bytes in the case's chunks: the segments say so.
      std::vector<std::size_t> sizes;
      for (const auto& seg : s.client.segments) {
        sizes.push_back(seg.len);
      }
      EXPECT_EQ(sizes, meta["chunks"].get<std::vector<std::size_t>>());
    }
    EXPECT_TRUE(s.saw_syn);
    EXPECT_FALSE(s.client.gap);
    // Segment offsets are contiguous and timestamps plausible (after 2020).
    std::uint64_t at = 0;
    for (const auto& seg : s.client.segments) {
      EXPECT_EQ(seg.offset, at);
      at += seg.len;
      EXPECT_GT(seg.ts_ns, 1'577'836'800'000'000'000LL);
    }
    // The PostgreSQL SSLRequest waits for the server's 'S' before the hello.
    if (meta["name"] == "openssl_starttls_postgres") {
      ASSERT_GE(s.client.segments.size(), 2U);
      EXPECT_EQ(s.client.segments[0].len, 8U);
      EXPECT_EQ(s.client.segments[0].peer_bytes_before, 0U);
      EXPECT_EQ(s.client.segments[1].peer_bytes_before, 1U);
      EXPECT_EQ(s.server.bytes.at(0), 'S');
    }
    ++checked;
  }
  EXPECT_GE(checked, 40);
}

TEST(PcapReader, RejectsGarbageAndTruncation) {
  cap::tcp_stream s;
  std::string err;
  std::vector<std::uint8_t> none;
  EXPECT_FALSE(cap::read_tcp_stream(none, {}, s, err));
  EXPECT_FALSE(err.empty());
  auto junk = random_bytes(4096, 7);
  EXPECT_FALSE(cap::read_tcp_stream(junk, {}, s, err));
  EXPECT_NE(err.find("not a pcap"), std::string::npos) << err;

  auto file = slurp(kCorpus / "pcap/curl_https_default.pcap");
  // Every proper prefix is rejected with a message or read as a shorter stream; never a crash.
  for (std::size_t n = 0; n < file.size(); n += 3) {
    std::span<const std::uint8_t> prefix(file.data(), n);
    bool ok = cap::read_tcp_stream(prefix, {}, s, err);
    if (!ok) {
      EXPECT_FALSE(err.empty());
    }
  }
  std::span<const std::uint8_t> cut(file.data(), file.size() - 10);
  EXPECT_FALSE(cap::read_tcp_stream(cut, {}, s, err));
  EXPECT_NE(err.find("truncated"), std::string::npos) << err;

  // A stream index that does not exist.
  cap::read_options o;
  o.stream_index = 5;
  EXPECT_FALSE(cap::read_tcp_stream(file, o, s, err));
  EXPECT_NE(err.find("no TCP stream 5"), std::string::npos) << err;
}

TEST(PcapngWriter, RoundTripIpv4BothDirections) {
  temp_dir dir;
  auto file = dir.path / "1.pcapng";
  auto conv =
      write_conversation(file, ep("127.0.0.1", 40000), ep("127.0.0.2", 443), cap::kUnlimited);
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600U);

  cap::tcp_stream s;
  std::string err;
  ASSERT_TRUE(cap::read_tcp_stream_file(file, {}, s, err)) << err;
  EXPECT_TRUE(s.saw_syn);
  EXPECT_EQ(s.client.ip, "127.0.0.1");
  EXPECT_EQ(s.client.port, 40000);
  EXPECT_EQ(s.server.ip, "127.0.0.2");
  EXPECT_EQ(s.server.port, 443);
  EXPECT_EQ(s.client.bytes, conv.c2s);
  EXPECT_EQ(s.server.bytes, conv.s2c);
  EXPECT_TRUE(s.client.fin);
  EXPECT_TRUE(s.server.fin);
  EXPECT_FALSE(s.client.gap);
  ASSERT_EQ(s.server.segments.size(), 3U);  // 40000 bytes at 16 KiB per segment
  EXPECT_EQ(s.server.segments[0].len, cap::kMaxSegmentPayload);
  // The client's second write came after the server's reply.
  ASSERT_EQ(s.client.segments.size(), 2U);
  EXPECT_EQ(s.client.segments[1].peer_bytes_before, 40000U);
  EXPECT_EQ(s.client.segments[1].ts_ns - s.client.segments[0].ts_ns, 2'000'000);

  auto frames = frames_of(slurp(file));
  EXPECT_EQ(frames.size(), 3U + 2U + 3U + 2U);  // handshake, data, FINs
  check_checksums(frames);
}

TEST(PcapngWriter, RoundTripIpv6AndMappedAddresses) {
  temp_dir dir;
  auto conv =
      write_conversation(dir.path / "6.pcapng", ep("::1", 5555), ep("::1", 8443), cap::kUnlimited);
  cap::tcp_stream s;
  std::string err;
  ASSERT_TRUE(cap::read_tcp_stream_file(dir.path / "6.pcapng", {}, s, err)) << err;
  EXPECT_EQ(s.client.ip, "::1");
  EXPECT_EQ(s.client.bytes, conv.c2s);
  EXPECT_EQ(s.server.bytes, conv.s2c);
  check_checksums(frames_of(slurp(dir.path / "6.pcapng")));

  // A v4-mapped address (a dual-stack listener) is written as IPv4.
  write_conversation(dir.path / "m.pcapng", ep("::ffff:10.0.0.1", 1), ep("10.0.0.2", 2), 100);
  ASSERT_TRUE(cap::read_tcp_stream_file(dir.path / "m.pcapng", {}, s, err)) << err;
  EXPECT_EQ(s.client.ip, "10.0.0.1");
}

TEST(PcapngWriter, ByteBoundPerDirection) {
  temp_dir dir;
  auto conv =
      write_conversation(dir.path / "b.pcapng", ep("127.0.0.1", 1), ep("127.0.0.1", 2), 100);
  cap::tcp_stream s;
  std::string err;
  ASSERT_TRUE(cap::read_tcp_stream_file(dir.path / "b.pcapng", {}, s, err)) << err;
  EXPECT_EQ(s.client.bytes, std::vector<std::uint8_t>(conv.c2s.begin(), conv.c2s.begin() + 100));
  EXPECT_EQ(s.server.bytes, std::vector<std::uint8_t>(conv.s2c.begin(), conv.s2c.begin() + 100));
  // The FIN's sequence number counts the bytes not captured: the reader sees the FIN.
  EXPECT_TRUE(s.client.fin);
}

TEST(PcapngWriter, ResetAndWantsMore) {
  temp_dir dir;
  std::error_code ec;
  auto rec =
      cap::recorder::open(dir.path / "r.pcapng", ep("127.0.0.1", 1), ep("127.0.0.1", 2), 10, ec);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec->wants_more(direction::client_to_server));
  auto bytes = random_bytes(10, 9);
  rec->data(direction::client_to_server, bytes);
  EXPECT_FALSE(rec->wants_more(direction::client_to_server));
  EXPECT_TRUE(rec->wants_more(direction::server_to_client));
  rec->rst(direction::server_to_client);
  EXPECT_FALSE(rec->wants_more(direction::server_to_client));
  rec->data(direction::server_to_client, bytes);  // after a reset: ignored
  rec->close();
  cap::tcp_stream s;
  std::string err;
  ASSERT_TRUE(cap::read_tcp_stream_file(dir.path / "r.pcapng", {}, s, err)) << err;
  EXPECT_TRUE(s.server.rst);
  EXPECT_EQ(s.client.bytes, bytes);
  EXPECT_TRUE(s.server.bytes.empty());
  // O_EXCL: an existing file is never overwritten.
  EXPECT_FALSE(
      cap::recorder::open(dir.path / "r.pcapng", ep("127.0.0.1", 1), ep("127.0.0.1", 2), 10, ec));
  EXPECT_EQ(ec, std::errc::file_exists);
}

// Format variants: the writer's frames re-wrapped as classic pcap in both byte orders and both
// resolutions, and with other link types; each must read back to the same streams.
namespace {
void put32(std::vector<std::uint8_t>& b, std::uint32_t v, bool little) {
  for (int i = 0; i < 4; ++i) {
    int shift = little ? 8 * i : 8 * (3 - i);
    b.push_back(static_cast<std::uint8_t>(v >> shift));
  }
}
void put16(std::vector<std::uint8_t>& b, std::uint16_t v, bool little) {
  b.push_back(static_cast<std::uint8_t>(little ? v : v >> 8));
  b.push_back(static_cast<std::uint8_t>(little ? v >> 8 : v));
}
std::vector<std::uint8_t> link_frame(const frame& f, std::uint32_t linktype, bool little) {
  std::vector<std::uint8_t> ip(f.data.begin() + 14, f.data.end());
  std::uint16_t ethertype = static_cast<std::uint16_t>(f.data[12] << 8 | f.data[13]);
  std::vector<std::uint8_t> out;
  switch (linktype) {
    case 1:
      out = f.data;
      // Add an 802.1Q tag and Ethernet padding bytes the IP length must cut off.
      out.insert(out.begin() + 12, {0x81, 0x00, 0x00, 0x05});
      out.insert(out.end(), {0, 0, 0, 0});
      return out;
    case 113:
      out = {0, 0, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0};
      put16(out, ethertype, false);
      break;
    case 276:
      put16(out, ethertype, false);
      out.insert(out.end(), {0, 0, 0, 0, 0, 1, 0, 1, 0, 6, 2, 0, 0, 0, 0, 1, 0, 0});
      break;
    case 101:
      break;
    case 0:
      put32(out, ethertype == 0x0800 ? 2 : 30, little);
      break;
    default:
      ADD_FAILURE() << "no such linktype in the test";
  }
  out.insert(out.end(), ip.begin(), ip.end());
  return out;
}
std::vector<std::uint8_t> make_pcap(const std::vector<frame>& frames, std::uint32_t linktype,
                                    bool little, bool nano) {
  std::vector<std::uint8_t> b;
  put32(b, nano ? 0xa1b23c4d : 0xa1b2c3d4, little);
  put16(b, 2, little);
  put16(b, 4, little);
  put32(b, 0, little);
  put32(b, 0, little);
  put32(b, 262144, little);
  put32(b, linktype, little);
  for (const frame& f : frames) {
    auto data = link_frame(f, linktype, little);
    put32(b, static_cast<std::uint32_t>(f.ts_us / 1000000), little);
    put32(b, static_cast<std::uint32_t>(f.ts_us % 1000000 * (nano ? 1000 : 1)), little);
    put32(b, static_cast<std::uint32_t>(data.size()), little);
    put32(b, static_cast<std::uint32_t>(data.size()), little);
    b.insert(b.end(), data.begin(), data.end());
  }
  return b;
}
// make_pcapng_be: a big-endian pcapng with nanosecond if_tsresol and SPB/EPB mixed.
std::vector<std::uint8_t> make_pcapng_be(const std::vector<frame>& frames, std::uint32_t linktype) {
  std::vector<std::uint8_t> b;
  auto block = [&](std::uint32_t type, const std::vector<std::uint8_t>& body) {
    std::uint32_t len = static_cast<std::uint32_t>(12 + (body.size() + 3) / 4 * 4);
    put32(b, type, false);
    put32(b, len, false);
    b.insert(b.end(), body.begin(), body.end());
    b.insert(b.end(), (4 - body.size() % 4) % 4, 0);
    put32(b, len, false);
  };
  std::vector<std::uint8_t> shb;
  put32(shb, 0x1A2B3C4D, false);
  put16(shb, 1, false);
  put16(shb, 0, false);
  put32(shb, 0xffffffff, false);
  put32(shb, 0xffffffff, false);
  block(0x0A0D0D0A, shb);
  std::vector<std::uint8_t> idb;
  put16(idb, static_cast<std::uint16_t>(linktype), false);
  put16(idb, 0, false);
  put32(idb, 0, false);
  put16(idb, 9, false);  // if_tsresol = 10^-9
  put16(idb, 1, false);
  idb.insert(idb.end(), {9, 0, 0, 0});
  put16(idb, 0, false);
  put16(idb, 0, false);
  block(1, idb);
  block(0x00000BAD, {1, 2, 3});  // a custom block to skip
  for (const frame& f : frames) {
    auto data = link_frame(f, linktype, false);
    std::vector<std::uint8_t> epb;
    std::uint64_t ns = f.ts_us * 1000;
    put32(epb, 0, false);
    put32(epb, static_cast<std::uint32_t>(ns >> 32), false);
    put32(epb, static_cast<std::uint32_t>(ns), false);
    put32(epb, static_cast<std::uint32_t>(data.size()), false);
    put32(epb, static_cast<std::uint32_t>(data.size()), false);
    epb.insert(epb.end(), data.begin(), data.end());
    block(6, epb);
  }
  return b;
}
}  // namespace

TEST(PcapReader, FormatVariants) {
  temp_dir dir;
  for (const char* ip : {"127.0.0.1", "::1"}) {
    SCOPED_TRACE(ip);
    auto file = dir.path / (std::string(ip[0] == ':' ? "v6" : "v4") + ".pcapng");
    auto conv = write_conversation(file, ep(ip, 33333), ep(ip, 443), cap::kUnlimited);
    auto frames = frames_of(slurp(file));
    cap::tcp_stream want;
    std::string err;
    ASSERT_TRUE(cap::read_tcp_stream_file(file, {}, want, err)) << err;
    for (std::uint32_t lt : {1U, 113U, 276U, 101U, 0U}) {
      for (bool little : {true, false}) {
        for (bool nano : {false, true}) {
          SCOPED_TRACE("linktype " + std::to_string(lt) + (little ? " le" : " be") +
                       (nano ? " ns" : " us"));
          auto bytes = make_pcap(frames, lt, little, nano);
          cap::tcp_stream got;
          ASSERT_TRUE(cap::read_tcp_stream(bytes, {}, got, err)) << err;
          EXPECT_EQ(got.client.bytes, conv.c2s);
          EXPECT_EQ(got.server.bytes, conv.s2c);
          ASSERT_EQ(got.client.segments.size(), want.client.segments.size());
          EXPECT_EQ(got.client.segments[1].ts_ns, want.client.segments[1].ts_ns);
        }
      }
      auto be = make_pcapng_be(frames, lt);
      cap::tcp_stream got;
      ASSERT_TRUE(cap::read_tcp_stream(be, {}, got, err)) << err;
      EXPECT_EQ(got.client.bytes, conv.c2s);
      EXPECT_EQ(got.server.bytes, conv.s2c);
      EXPECT_EQ(got.client.segments[1].ts_ns, want.client.segments[1].ts_ns);
    }
  }
}

TEST(PcapReader, RetransmitsAndReorderingWithoutSyn) {
  temp_dir dir;
  auto file = dir.path / "x.pcapng";
  auto conv =
      write_conversation(file, ep("127.0.0.1", 1000), ep("127.0.0.1", 2000), cap::kUnlimited);
  auto frames = frames_of(slurp(file));
  // Drop the handshake, duplicate the server's first data segment after its second, and swap
  // the client's two data segments.
  std::vector<frame> f(frames.begin() + 3, frames.end());
  // f: c-data, s-data x3, c-data, c-fin, s-fin
  std::vector<frame> g = {f[4], f[1], f[2], f[1], f[0], f[3], f[5], f[6]};
  auto bytes = make_pcap(g, 1, true, false);
  cap::tcp_stream s;
  std::string err;
  ASSERT_TRUE(cap::read_tcp_stream(bytes, {}, s, err)) << err;
  EXPECT_FALSE(s.saw_syn);
  // Without a SYN the first sender counts as the client: here that is the real client.
  EXPECT_EQ(s.client.port, 1000);
  EXPECT_EQ(s.client.bytes, conv.c2s);
  EXPECT_EQ(s.server.bytes, conv.s2c);
  EXPECT_EQ(s.server.segments.size(), 3U);

  // A hole: drop the server's second segment; bytes stop at the hole.
  std::vector<frame> h = {f[0], f[1], f[3], f[4]};
  bytes = make_pcap(h, 1, true, false);
  ASSERT_TRUE(cap::read_tcp_stream(bytes, {}, s, err)) << err;
  EXPECT_TRUE(s.server.gap);
  EXPECT_EQ(s.server.bytes.size(), cap::kMaxSegmentPayload);
}

TEST(CaptureDir, NamesModesBoundsAndStops) {
  temp_dir dir;
  cap::capture_dir::options o;
  o.dir = dir.path / "caps";
  o.bytes_per_direction = 1000;
  o.max_total_bytes = 3 * 3000;  // room for about three small captures
  std::vector<std::string> messages;
  o.on_stop = [&](const std::string& m) { messages.push_back(m); };
  std::error_code ec;
  auto cd = cap::capture_dir::open(o, ec);
  ASSERT_TRUE(cd) << ec.message();
  struct stat st {};
  ASSERT_EQ(::stat(o.dir.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700U);

  auto payload = random_bytes(1000, 4);
  std::vector<std::string> names;
  for (int i = 0; i < 8; ++i) {
    std::string name;
    auto rec = cd->start("c/" + std::to_string(i), ep("127.0.0.1", 1), ep("127.0.0.1", 2), name);
    ASSERT_TRUE(rec);
    rec->data(direction::client_to_server, payload);
    rec->data(direction::server_to_client, payload);
    rec->close();
    names.push_back(name);
  }
  EXPECT_EQ(names[0], "c_0.pcapng");
  // Oldest removed first; the newest are there; the total stays within budget.
  EXPECT_FALSE(fs::exists(o.dir / names[0]));
  EXPECT_TRUE(fs::exists(o.dir / names[7]));
  EXPECT_TRUE(fs::exists(o.dir / names[6]));
  std::uint64_t total = 0;
  for (const auto& e : fs::directory_iterator(o.dir)) {
    if (e.path().extension() == ".pcapng") {  // not the manifest
      total += e.file_size();
    }
  }
  EXPECT_LE(total, o.max_total_bytes);
  EXPECT_EQ(total, cd->total_bytes());
  EXPECT_FALSE(cd->stopped());

  // A restarted process finds the old captures and does not overwrite a name.
  auto cd2 = cap::capture_dir::open(o, ec);
  ASSERT_TRUE(cd2);
  EXPECT_EQ(cd2->total_bytes(), total);
  std::string name;
  auto again = cd2->start("c/7", ep("127.0.0.1", 1), ep("127.0.0.1", 2), name);
  ASSERT_TRUE(again);
  EXPECT_EQ(name, "c_7-1.pcapng");
  again.reset();

  // A write error (here EFBIG from RLIMIT_FSIZE, standing in for ENOSPC) stops capture once.
  ::signal(SIGXFSZ, SIG_IGN);
  rlimit old{};
  ::getrlimit(RLIMIT_FSIZE, &old);
  rlimit small = old;
  small.rlim_cur = 4096;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  o.bytes_per_direction = cap::kUnlimited;
  o.max_total_bytes = std::uint64_t{1} << 30;
  auto cd3 = cap::capture_dir::open(o, ec);
  ASSERT_TRUE(cd3);
  auto rec = cd3->start("big", ep("127.0.0.1", 1), ep("127.0.0.1", 2), name);
  ASSERT_TRUE(rec);
  auto big = random_bytes(20000, 5);
  rec->data(direction::client_to_server, big);
  rec->data(direction::client_to_server, big);  // no-op after the failure
  EXPECT_TRUE(rec->failed());
  EXPECT_FALSE(rec->wants_more(direction::client_to_server));
  ::setrlimit(RLIMIT_FSIZE, &old);
  EXPECT_TRUE(cd3->stopped());
  ASSERT_EQ(messages.size(), 1U);
  EXPECT_NE(messages[0].find("big.pcapng"), std::string::npos) << messages[0];
  EXPECT_FALSE(cd3->start("next", ep("127.0.0.1", 1), ep("127.0.0.1", 2), name));
  EXPECT_EQ(messages.size(), 1U);
}

namespace {

// Issue 20: the budget evicts only captures linesman wrote. Files someone else put in the
// directory (a tcpdump capture, a file named like ours) are never removed, however old.
TEST(CaptureDir, ForeignFilesAreNeverEvicted) {
  temp_dir dir;
  cap::capture_dir::options o;
  o.dir = dir.path / "caps";
  fs::create_directories(o.dir);
  const std::string blob(600 * 1024, 'x');
  std::vector<fs::path> foreign;
  for (const char* n : {"tcpdump-incident-1.pcapng", "tcpdump-incident-2.pcapng",
                        "tcpdump-incident-3.pcapng", "c_0.pcapng"}) {
    foreign.push_back(o.dir / n);
    std::ofstream(foreign.back()) << blob;
  }
  o.bytes_per_direction = 1000;
  o.max_total_bytes = 1024 * 1024;
  std::vector<std::string> messages;
  o.on_stop = [&](const std::string& m) { messages.push_back(m); };
  std::vector<std::string> warnings;
  o.on_warning = [&](const std::string& m) { warnings.push_back(m); };
  std::error_code ec;
  auto cd = cap::capture_dir::open(o, ec);
  ASSERT_TRUE(cd) << ec.message();
  const auto payload = random_bytes(1000, 7);
  std::vector<std::string> names;
  for (int i = 0; i < 3; ++i) {
    std::string name;
    auto rec = cd->start("c/" + std::to_string(i), ep("127.0.0.1", 1), ep("127.0.0.1", 2), name);
    ASSERT_TRUE(rec);
    rec->data(direction::client_to_server, payload);
    rec->close();
    names.push_back(name);
  }
  for (const auto& f : foreign) {
    EXPECT_TRUE(fs::exists(f)) << f << " was removed";
  }
  EXPECT_EQ(names[0], "c_0-1.pcapng");        // the foreign c_0.pcapng keeps its name
  EXPECT_TRUE(fs::exists(o.dir / names[2]));  // the newest own capture is kept
  EXPECT_FALSE(cd->stopped());
  // Said once, naming the directory, however many captures found the budget taken.
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find(o.dir.string()), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("did not write"), std::string::npos) << warnings[0];
  EXPECT_TRUE(messages.empty());

  // The budget still evicts linesman's own captures: with the foreign files gone, a restarted
  // process (which knows its files from the manifest) removes its oldest to make room.
  for (const auto& f : foreign) {
    fs::remove(f);
  }
  o.max_total_bytes = 1;  // less than one capture: every closed own file must go
  auto cd2 = cap::capture_dir::open(o, ec);
  ASSERT_TRUE(cd2);
  std::string name;
  auto rec = cd2->start("next", ep("127.0.0.1", 1), ep("127.0.0.1", 2), name);
  ASSERT_TRUE(rec);
  for (const auto& n : names) {
    EXPECT_FALSE(fs::exists(o.dir / n)) << n << " was kept over budget";
  }
}

}  // namespace
