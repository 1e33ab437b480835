// proxy_protocol_config_test: the PROXY protocol and transparent keys/flags of `linesman run`.
#include "proxy/config.hpp"

#include <array>
#include <cstdint>
#include <string>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

TEST(ProxyProtocolConfig, CidrContains) {
  const auto lo = parse_cidr("127.0.0.0/8", "t");
  EXPECT_TRUE(cidr_contains(lo, std::array<std::uint8_t, 4>{127, 9, 8, 7}));
  EXPECT_FALSE(cidr_contains(lo, std::array<std::uint8_t, 4>{128, 0, 0, 1}));
  // An IPv4-mapped IPv6 peer counts as its IPv4 address.
  EXPECT_TRUE(cidr_contains(
      lo, std::array<std::uint8_t, 16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1}));
  const auto odd = parse_cidr("10.1.2.128/25", "t");
  EXPECT_TRUE(cidr_contains(odd, std::array<std::uint8_t, 4>{10, 1, 2, 200}));
  EXPECT_FALSE(cidr_contains(odd, std::array<std::uint8_t, 4>{10, 1, 2, 127}));
  const auto one6 = parse_cidr("::1", "t");
  EXPECT_EQ(one6.prefix, 128);
  EXPECT_FALSE(cidr_contains(one6, std::array<std::uint8_t, 4>{127, 0, 0, 1}));
  const auto all = parse_cidr("0.0.0.0/0", "t");
  EXPECT_TRUE(cidr_contains(all, std::array<std::uint8_t, 4>{203, 0, 113, 1}));
}

TEST(ProxyProtocolConfig, BadCidrNamesTheFlag) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "nope", "10.0.0.0/", "10.0.0.0/x", ""}) {
    try {
      (void)parse_cidr(bad, "--proxy-trusted");
      ADD_FAILURE() << bad;
    } catch (const config_error& e) {
      EXPECT_NE(std::string(e.what()).find("--proxy-trusted"), std::string::npos) << e.what();
    }
  }
}

TEST(ProxyProtocolConfig, YamlKeys) {
  const auto ls = load_yaml_listeners(
      "listeners:\n"
      "  - listen: 127.0.0.1:0\n"
      "    upstream: a:1\n"
      "    proxy_protocol_in: v2\n"
      "    proxy_protocol_in_action: strip\n"
      "    proxy_protocol_out: v1\n"
      "    trusted: [10.0.0.0/8, \"::1\"]\n"
      "    routes:\n"
      "      - sni: a.example\n"
      "        upstream: b:2\n"
      "        proxy_protocol_out: v2\n"
      "  - listen: 127.0.0.1:0\n"
      "    transparent: true\n",
      "cfg.yaml", {}, {});
  ASSERT_EQ(ls.size(), 2u);
  EXPECT_EQ(ls[0].pp.in, proxy_in_mode::v2);
  EXPECT_TRUE(ls[0].pp.strip);
  EXPECT_EQ(ls[0].pp.out, 1);
  ASSERT_EQ(ls[0].pp.trusted.size(), 2u);
  EXPECT_EQ(ls[0].pp.trusted[0].text, "10.0.0.0/8");
  ASSERT_EQ(ls[0].routes.size(), 1u);
  EXPECT_EQ(ls[0].routes[0].proxy_out, 2);
  EXPECT_EQ(ls[1].pp.in, proxy_in_mode::off);
  EXPECT_EQ(ls[1].pp.trusted.size(), 2u);  // loopback by default
  EXPECT_TRUE(ls[1].transparent);
  EXPECT_THROW((void)load_yaml_listeners("listeners:\n  - listen: 127.0.0.1:0\n    upstream: a:1\n"
                                         "    proxy_protocol_in: v3\n",
                                         "cfg.yaml", {}, {}),
               config_error);
}

TEST(ProxyProtocolConfig, Flags) {
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  cli.upstream = "127.0.0.1:1";
  cli.proxy_in = "auto";
  cli.proxy_trusted = {"192.0.2.0/24"};
  const auto cfg = build_run_config(cli, std::nullopt);
  EXPECT_EQ(cfg.listeners.at(0).pp.in, proxy_in_mode::auto_detect);
  ASSERT_EQ(cfg.listeners.at(0).pp.trusted.size(), 1u);
  cli_listener strip_only;
  strip_only.listen = "127.0.0.1:0";
  strip_only.upstream = "127.0.0.1:1";
  strip_only.proxy_strip = true;
  EXPECT_THROW((void)build_run_config(strip_only, std::nullopt), config_error);
  cli_listener transparent;
  transparent.listen = "127.0.0.1:0";
  transparent.transparent = true;
  EXPECT_TRUE(build_run_config(transparent, std::nullopt).listeners.at(0).transparent);
}

}  // namespace
}  // namespace linesman::proxy
