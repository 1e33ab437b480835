// Tests of proxy/address: the one host:port parser, under the rules each caller uses.
#include "proxy/address.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

address_error parse(std::string_view text, const address_rules& rules = {}) {
  address_parts out;
  return parse_address(text, rules, out);
}

TEST(ParseAddress, SplitsHostAndPort) {
  address_parts out;
  ASSERT_EQ(parse_address("db.internal:5432", {}, out), address_error::none);
  EXPECT_EQ(out.host, "db.internal");
  EXPECT_EQ(out.port, 5432);
  EXPECT_EQ(out.port_text, "5432");
  ASSERT_EQ(parse_address("[::1]:8443", {}, out), address_error::none);
  EXPECT_EQ(out.host, "::1");
  EXPECT_EQ(out.port, 8443);
}

TEST(ParseAddress, EachProblemHasItsError) {
  EXPECT_EQ(parse(""), address_error::empty);
  EXPECT_EQ(parse("tcp://db:5432"), address_error::url);
  EXPECT_EQ(parse("[::1:80"), address_error::missing_bracket);
  EXPECT_EQ(parse("[::1]80"), address_error::after_bracket);
  EXPECT_EQ(parse("[zz]:80"), address_error::not_ipv6);
  EXPECT_EQ(parse("db"), address_error::no_port);
  EXPECT_EQ(parse("[::1]"), address_error::no_port);
  EXPECT_EQ(parse("::1:5432"), address_error::ipv6_without_brackets);
  EXPECT_EQ(parse(":80"), address_error::empty_host);
  EXPECT_EQ(parse("a b:80"), address_error::bad_host);
  EXPECT_EQ(parse("user@db:80"), address_error::bad_host);
  EXPECT_EQ(parse("db:"), address_error::empty_port);
  EXPECT_EQ(parse("db:postgres"), address_error::port_not_number);
  EXPECT_EQ(parse("db:70000"), address_error::port_out_of_range);
  EXPECT_EQ(parse("db:99999999999999999999"), address_error::port_out_of_range);
  EXPECT_EQ(parse("db:0"), address_error::port_out_of_range);
  EXPECT_EQ(parse("db:5432/tcp"), address_error::port_not_number);  // no suffix without the rule
}

TEST(ParseAddress, RulesWidenWhatIsAccepted) {
  EXPECT_EQ(parse("127.0.0.1:0", {.zero_port = true}), address_error::none);
  address_parts out;
  const address_rules traefik{.empty_host = true, .protocol_suffix = true};
  ASSERT_EQ(parse_address(":8443", traefik, out), address_error::none);
  EXPECT_EQ(out.host, "");
  ASSERT_EQ(parse_address("0.0.0.0:53/udp", traefik, out), address_error::none);
  EXPECT_TRUE(out.udp);
  ASSERT_EQ(parse_address("[::]:443/tcp", traefik, out), address_error::none);
  EXPECT_EQ(out.host, "::");
  EXPECT_FALSE(out.udp);
  EXPECT_EQ(parse_address("db:5432/sctp", traefik, out), address_error::unknown_protocol);
  EXPECT_EQ(out.protocol, "sctp");
}

TEST(ParseAddress, PortErrorsAreToldApart) {
  EXPECT_TRUE(is_port_error(address_error::empty_port));
  EXPECT_TRUE(is_port_error(address_error::port_not_number));
  EXPECT_TRUE(is_port_error(address_error::port_out_of_range));
  EXPECT_FALSE(is_port_error(address_error::no_port));
  EXPECT_FALSE(is_port_error(address_error::none));
}

// inet_ntop(3) is the reference: every value of every octet, the edges, and a spread of
// addresses in between.
std::string ntop(std::uint32_t host_order) {
  in_addr a{};
  a.s_addr = htonl(host_order);
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof buf);
}

TEST(Ipv4Text, WritesWhatInetNtopWrites) {
  for (std::uint32_t v = 0; v < 256; ++v) {
    for (int shift = 0; shift < 32; shift += 8) {
      const std::uint32_t a = (v << shift) | (0x01010101U & ~(0xffU << shift));
      ASSERT_EQ(ipv4_text(a), ntop(a)) << a;
    }
  }
  for (const std::uint32_t a : {0U, 0xffffffffU, 0x7f000001U, 0x0a000001U, 0xc0a80a64U}) {
    EXPECT_EQ(ipv4_text(a), ntop(a));
  }
  std::uint32_t a = 12345;
  for (int i = 0; i < 100000; ++i) {
    a = a * 1664525U + 1013904223U;  // (an LCG: a reproducible spread)
    ASSERT_EQ(ipv4_text(a), ntop(a)) << a;
  }
}

}  // namespace
}  // namespace linesman::proxy
