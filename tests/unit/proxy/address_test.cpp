// Tests of proxy/address: the one host:port parser, under the rules each caller uses.
#include "proxy/address.hpp"

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

}  // namespace
}  // namespace linesman::proxy
