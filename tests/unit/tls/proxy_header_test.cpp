#include "tls/proxy_header.hpp"

#include "hello_builder.hpp"

#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::tls {
namespace {

using bytes = std::vector<std::uint8_t>;

using testing::text;

proxy_endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d,
                  std::uint16_t port) {
  proxy_endpoint ep;
  ep.addr = {a, b, c, d};
  ep.addr_len = 4;
  ep.port = port;
  return ep;
}

proxy_endpoint v6(std::initializer_list<std::uint8_t> addr, std::uint16_t port) {
  proxy_endpoint ep;
  std::copy(addr.begin(), addr.end(), ep.addr.begin());
  ep.addr_len = 16;
  ep.port = port;
  return ep;
}

std::string endpoint_text(const proxy_endpoint& ep) {
  std::array<char, 64> buf{};
  return std::string(buf.data(), format_proxy_endpoint(ep, buf));
}

std::string as_string(std::span<const std::uint8_t> s) { return std::string(s.begin(), s.end()); }

// Every proper prefix of a header is incomplete; the header followed by payload is complete with
// the same length.
void expect_prefixes_incomplete(const bytes& header) {
  proxy_header h;
  for (std::size_t n = 0; n < header.size(); ++n) {
    ASSERT_EQ(parse_proxy_header(std::span(header).first(n), h), proxy_status::incomplete)
        << "prefix " << n;
  }
  bytes more = header;
  more.insert(more.end(), {0x16, 0x03, 0x01, 'x', 'y'});
  ASSERT_EQ(parse_proxy_header(more, h), proxy_status::complete);
  EXPECT_EQ(h.header_len, header.size());
}

TEST(ProxyV1, ParsesTcp4) {
  const bytes in = text("PROXY TCP4 192.168.0.1 10.0.0.2 56324 443\r\nGET / HTTP/1.1\r\n");
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(in, h), proxy_status::complete);
  EXPECT_EQ(h.version, proxy_version::v1);
  EXPECT_EQ(h.command, proxy_command::proxy);
  EXPECT_EQ(h.family, proxy_family::inet);
  EXPECT_EQ(h.header_len, 43U);
  EXPECT_EQ(endpoint_text(h.source), "192.168.0.1:56324");
  EXPECT_EQ(endpoint_text(h.destination), "10.0.0.2:443");
  expect_prefixes_incomplete(bytes(in.begin(), in.begin() + 43));
}

TEST(ProxyV1, ParsesTcp6AndUnknown) {
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(text("PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 65535\r\n"), h),
            proxy_status::complete);
  EXPECT_EQ(h.family, proxy_family::inet6);
  EXPECT_EQ(endpoint_text(h.source), "[2001:db8::1]:1");
  EXPECT_EQ(endpoint_text(h.destination), "[::ffff:a00:1]:65535");
  ASSERT_EQ(parse_proxy_header(text("PROXY UNKNOWN\r\n"), h), proxy_status::complete);
  EXPECT_EQ(h.family, proxy_family::unspec);
  EXPECT_EQ(h.header_len, 15U);
  ASSERT_EQ(
      parse_proxy_header(text("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), h),
      proxy_status::complete);
}

TEST(ProxyV1, RejectsMalformed) {
  proxy_header h;
  for (const char* bad : {
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",          // LF without CR
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\r",        // CR without LF
           "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",       // double space
           "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",       // trailing space
           "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",      // octet out of range
           "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",          // three octets
           "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",       // leading zero
           "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",    // port out of range
           "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",      // port with a leading zero
           "PROXY TCP4 ::1 ::1 1 2\r\n",                // IPv6 under TCP4
           "PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",        // IPv4 under TCP6
           "PROXY TCP6 1::2::3 ::1 1 2\r\n",            // two "::"
           "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",  // nine groups
           "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n",  // "::" standing for nothing
           "PROXY TCP6 12345::1 ::1 1 2\r\n",           // five hex digits
           "PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",        // not a v1 protocol
           "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",          // missing port
           "PROXY \r\n",
       }) {
    EXPECT_EQ(parse_proxy_header(text(bad), h), proxy_status::malformed) << bad;
  }
  // No CRLF within 107 bytes.
  EXPECT_EQ(parse_proxy_header(text("PROXY UNKNOWN " + std::string(100, 'a')), h),
            proxy_status::malformed);
  EXPECT_EQ(parse_proxy_header(text("PROXY UNKNOWN " + std::string(90, 'a')), h),
            proxy_status::incomplete);
  EXPECT_EQ(parse_proxy_header(text("PROXY UNKNOWN " + std::string(91, 'a') + "\r\n"), h),
            proxy_status::complete);
  EXPECT_EQ(parse_proxy_header(text("PROXY UNKNOWN " + std::string(92, 'a') + "\r\n"), h),
            proxy_status::malformed);
}

TEST(ProxyHeader, NotProxy) {
  proxy_header h;
  EXPECT_EQ(parse_proxy_header(text("GET / HTTP/1.1\r\n"), h), proxy_status::not_proxy);
  EXPECT_EQ(parse_proxy_header(text("PROXZ"), h), proxy_status::not_proxy);
  EXPECT_EQ(parse_proxy_header(bytes{0x16, 0x03, 0x01}, h), proxy_status::not_proxy);
  EXPECT_EQ(parse_proxy_header(bytes{0x0d, 0x0a, 0x0d, 0x0a, 0x01}, h), proxy_status::not_proxy);
  EXPECT_EQ(parse_proxy_header(bytes{}, h), proxy_status::incomplete);
  EXPECT_EQ(parse_proxy_header(text("PROX"), h), proxy_status::incomplete);
  EXPECT_EQ(parse_proxy_header(bytes{0x0d, 0x0a, 0x0d, 0x0a, 0x00}, h), proxy_status::incomplete);
}

TEST(ProxyV1, WriterRoundTrip) {
  std::array<std::uint8_t, kProxyV1MaxLen> buf{};
  const proxy_endpoint src = v4(203, 0, 113, 7, 51000);
  const proxy_endpoint dst = v4(127, 0, 0, 1, 8443);
  const std::size_t n = write_proxy_v1(src, dst, buf);
  ASSERT_GT(n, 0U);
  EXPECT_EQ(as_string(std::span(buf).first(n)), "PROXY TCP4 203.0.113.7 127.0.0.1 51000 8443\r\n");
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(std::span(buf).first(n), h), proxy_status::complete);
  EXPECT_EQ(endpoint_text(h.source), "203.0.113.7:51000");
  EXPECT_EQ(endpoint_text(h.destination), "127.0.0.1:8443");

  // The longest TCP6 header: 104 bytes (107 is the UNKNOWN worst case of the spec).
  const proxy_endpoint big = v6({0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0xff, 0xff},
                                65535);
  const std::size_t m = write_proxy_v1(big, big, buf);
  EXPECT_EQ(m, 104U);
  ASSERT_EQ(parse_proxy_header(std::span(buf).first(m), h), proxy_status::complete);
  EXPECT_TRUE(std::ranges::equal(h.source.address(), big.address()));
  expect_prefixes_incomplete(bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(m)));

  EXPECT_EQ(write_proxy_v1(src, big, buf), 0U);  // mixed families
  EXPECT_EQ(write_proxy_v1(src, dst, std::span(buf).first(20)), 0U);
  const std::size_t u = write_proxy_v1(proxy_endpoint{}, proxy_endpoint{}, buf);
  EXPECT_EQ(as_string(std::span(buf).first(u)), "PROXY UNKNOWN\r\n");
}

TEST(ProxyV1, Ipv6TextRoundTripsForManyAddresses) {
  std::mt19937 rng(7);
  std::array<std::uint8_t, kProxyV1MaxLen> buf{};
  for (int i = 0; i < 2000; ++i) {
    proxy_endpoint ep;
    ep.addr_len = 16;
    for (auto& b : ep.addr) {
      // Many zero bytes, so "::" runs of every length and position occur.
      b = (rng() % 3 == 0) ? static_cast<std::uint8_t>(rng()) : 0;
    }
    ep.port = static_cast<std::uint16_t>(rng());
    const std::size_t n = write_proxy_v1(ep, ep, buf);
    ASSERT_GT(n, 0U);
    proxy_header h;
    ASSERT_EQ(parse_proxy_header(std::span(buf).first(n), h), proxy_status::complete)
        << as_string(std::span(buf).first(n));
    ASSERT_TRUE(std::ranges::equal(h.source.address(), ep.address()))
        << as_string(std::span(buf).first(n));
    EXPECT_EQ(h.source.port, ep.port);
  }
}

TEST(ProxyV2, WriterRoundTripIpv4WithTlvs) {
  std::array<std::uint8_t, 512> buf{};
  const bytes unique = {1, 2, 3, 4, 5, 6, 7, 8};
  const proxy_v2_tlvs tlvs{.authority = "app.example.test", .unique_id = unique, .crc32c = true};
  const std::size_t n = write_proxy_v2(v4(10, 1, 2, 3, 40000), v4(10, 9, 8, 7, 443), tlvs, buf);
  ASSERT_GT(n, 0U);
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(std::span(buf).first(n), h), proxy_status::complete);
  EXPECT_EQ(h.version, proxy_version::v2);
  EXPECT_EQ(h.command, proxy_command::proxy);
  EXPECT_EQ(h.family, proxy_family::inet);
  EXPECT_EQ(h.transport, proxy_transport::stream);
  EXPECT_EQ(h.header_len, n);
  EXPECT_EQ(endpoint_text(h.source), "10.1.2.3:40000");
  EXPECT_EQ(endpoint_text(h.destination), "10.9.8.7:443");
  EXPECT_EQ(as_string(h.authority), "app.example.test");
  EXPECT_EQ(bytes(h.unique_id.begin(), h.unique_id.end()), unique);
  EXPECT_TRUE(h.has_crc32c);
  EXPECT_TRUE(h.crc32c_ok);
  // Walk the TLVs in order.
  byte_reader block(h.tlvs);
  proxy_tlv tlv;
  std::vector<int> types;
  while (next_proxy_tlv(block, tlv)) {
    types.push_back(tlv.type);
  }
  EXPECT_EQ(types, (std::vector<int>{kPp2TypeAuthority, kPp2TypeUniqueId, kPp2TypeCrc32c}));
  expect_prefixes_incomplete(bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n)));

  // A flipped bit anywhere but in the signature breaks the checksum or the framing.
  for (std::size_t i = 16; i < n; ++i) {
    bytes bad(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(n));
    bad[i] ^= 0x01;
    proxy_header hb;
    const proxy_status st = parse_proxy_header(bad, hb);
    EXPECT_TRUE(st != proxy_status::complete || !hb.crc32c_ok) << "byte " << i;
  }
}

TEST(ProxyV2, WriterRoundTripIpv6AndLocal) {
  std::array<std::uint8_t, 512> buf{};
  const proxy_endpoint src = v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 1234);
  const proxy_endpoint dst = v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443);
  const std::size_t n = write_proxy_v2(src, dst, {}, buf);
  ASSERT_EQ(n, 16U + 36U);
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(std::span(buf).first(n), h), proxy_status::complete);
  EXPECT_EQ(h.family, proxy_family::inet6);
  EXPECT_EQ(endpoint_text(h.source), "[2001:db8::1]:1234");
  EXPECT_EQ(endpoint_text(h.destination), "[::1]:443");
  EXPECT_FALSE(h.has_crc32c);
  EXPECT_TRUE(h.tlvs.empty());

  const std::size_t l = write_proxy_v2(proxy_endpoint{}, proxy_endpoint{}, {}, buf);
  ASSERT_EQ(l, 16U);
  ASSERT_EQ(parse_proxy_header(std::span(buf).first(l), h), proxy_status::complete);
  EXPECT_EQ(h.command, proxy_command::local);
  EXPECT_EQ(h.family, proxy_family::unspec);

  EXPECT_EQ(write_proxy_v2(src, v4(1, 2, 3, 4, 5), {}, buf), 0U);
  EXPECT_EQ(write_proxy_v2(src, dst, {}, std::span(buf).first(40)), 0U);
  const bytes too_long(129, 1);
  EXPECT_EQ(
      write_proxy_v2(src, dst, {.authority = {}, .unique_id = too_long, .crc32c = false}, buf), 0U);
}

bytes v2_header(std::uint8_t ver_cmd, std::uint8_t fam, const bytes& body) {
  bytes out(kProxyV2Signature.begin(), kProxyV2Signature.end());
  out.push_back(ver_cmd);
  out.push_back(fam);
  out.push_back(static_cast<std::uint8_t>(body.size() >> 8U));
  out.push_back(static_cast<std::uint8_t>(body.size() & 0xffU));
  out.insert(out.end(), body.begin(), body.end());
  return out;
}

TEST(ProxyV2, UnixAndSslTlvs) {
  bytes body(216, 0);
  body[0] = '/';
  body[108] = '/';
  // SSL TLV: client=0x07, verify=0, sub-TLVs version "TLSv1.3" and CN "client".
  const bytes ssl = {0x07, 0,   0,   0,    0, 0x21, 0,   7,   'T', 'L', 'S', 'v',
                     '1',  '.', '3', 0x22, 0, 6,    'c', 'l', 'i', 'e', 'n', 't'};
  body.push_back(kPp2TypeSsl);
  body.push_back(0);
  body.push_back(static_cast<std::uint8_t>(ssl.size()));
  body.insert(body.end(), ssl.begin(), ssl.end());
  body.insert(body.end(), {kPp2TypeNetns, 0, 3, 'n', 's', '1', kPp2TypeNoop, 0, 0, kPp2TypeAlpn, 0,
                           2, 'h', '2'});
  const bytes in = v2_header(0x21, 0x31, body);
  proxy_header h;
  ASSERT_EQ(parse_proxy_header(in, h), proxy_status::complete);
  EXPECT_EQ(h.family, proxy_family::unix_socket);
  EXPECT_EQ(h.unix_source.size(), 108U);
  EXPECT_TRUE(h.ssl.present);
  EXPECT_EQ(h.ssl.client, 0x07);
  EXPECT_EQ(as_string(h.ssl.version), "TLSv1.3");
  EXPECT_EQ(as_string(h.ssl.cn), "client");
  EXPECT_EQ(as_string(h.netns), "ns1");
  EXPECT_EQ(as_string(h.alpn), "h2");
  expect_prefixes_incomplete(in);
}

TEST(ProxyV2, Malformed) {
  proxy_header h;
  EXPECT_EQ(parse_proxy_header(v2_header(0x11, 0x11, bytes(12)), h), proxy_status::malformed);
  EXPECT_EQ(parse_proxy_header(v2_header(0x22, 0x11, bytes(12)), h), proxy_status::malformed);
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x41, bytes(12)), h), proxy_status::malformed);
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x13, bytes(12)), h), proxy_status::malformed);
  // Address block shorter than the family needs.
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x11, bytes(11)), h), proxy_status::malformed);
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x21, bytes(35)), h), proxy_status::malformed);
  // A TLV that overruns the header.
  bytes body(12, 0);
  body.insert(body.end(), {kPp2TypeAuthority, 0, 5, 'a'});
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x11, body), h), proxy_status::malformed);
  // A CRC32C TLV of the wrong length, and a unique id over 128 bytes.
  bytes crc(12, 0);
  crc.insert(crc.end(), {kPp2TypeCrc32c, 0, 2, 0, 0});
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x11, crc), h), proxy_status::malformed);
  bytes uid(12, 0);
  uid.insert(uid.end(), {kPp2TypeUniqueId, 0, 129});
  uid.insert(uid.end(), 129, 0x41);
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x11, uid), h), proxy_status::malformed);
  // An SSL TLV shorter than its fixed part.
  bytes ssl(12, 0);
  ssl.insert(ssl.end(), {kPp2TypeSsl, 0, 2, 0, 0});
  EXPECT_EQ(parse_proxy_header(v2_header(0x21, 0x11, ssl), h), proxy_status::malformed);
  // A wrong CRC is not malformed, just not ok.
  bytes wrong(12, 0);
  wrong.insert(wrong.end(), {kPp2TypeCrc32c, 0, 4, 1, 2, 3, 4});
  ASSERT_EQ(parse_proxy_header(v2_header(0x21, 0x11, wrong), h), proxy_status::complete);
  EXPECT_TRUE(h.has_crc32c);
  EXPECT_FALSE(h.crc32c_ok);
}

TEST(ProxyV2, Crc32cKnownAnswer) {
  const bytes check = text("123456789");
  EXPECT_EQ(crc32c(check), 0xe3069283U);
  EXPECT_EQ(crc32c({}), 0U);
}

}  // namespace
}  // namespace linesman::tls
