#include "proxy/route.hpp"

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

route_config make(const std::string& sni, const std::string& name, std::uint16_t port) {
  route_config r;
  r.sni = sni;
  r.name = name;
  r.upstream = parse_host_port("127.0.0.1:" + std::to_string(port), "test", false);
  return r;
}

TEST(RouteTable, ExactMatchIsCaseInsensitiveAndIgnoresTrailingDot) {
  const route_table t({make("App.Example.com", "app", 1)});
  for (const char* sni :
       {"app.example.com", "APP.EXAMPLE.COM", "app.example.com.", "App.Example.Com."}) {
    const auto* r = t.match(sni);
    ASSERT_NE(r, nullptr) << sni;
    EXPECT_EQ(r->name, "app");
  }
  EXPECT_EQ(t.match("app.example.org"), nullptr);
  EXPECT_EQ(t.match("xapp.example.com"), nullptr);
  EXPECT_EQ(t.match(""), nullptr);
}

TEST(RouteTable, WildcardMatchesSubdomainsButNotTheApex) {
  const route_table t({make("*.example.com", "wild", 1)});
  EXPECT_NE(t.match("a.example.com"), nullptr);
  EXPECT_NE(t.match("a.b.example.com"), nullptr);
  EXPECT_NE(t.match("A.EXAMPLE.COM."), nullptr);
  EXPECT_EQ(t.match("example.com"), nullptr);
  EXPECT_EQ(t.match(".example.com"), nullptr);
  EXPECT_EQ(t.match("aexample.com"), nullptr);
  EXPECT_EQ(t.match("a.example.org"), nullptr);
}

TEST(RouteTable, ExactBeatsWildcardAndLongestWildcardWins) {
  const route_table t({make("*.example.com", "wide", 1), make("*.api.example.com", "narrow", 2),
                       make("x.api.example.com", "exact", 3)});
  EXPECT_EQ(t.match("x.api.example.com")->name, "exact");
  EXPECT_EQ(t.match("y.api.example.com")->name, "narrow");
  EXPECT_EQ(t.match("www.example.com")->name, "wide");
}

TEST(RouteTable, EmptyTable) {
  const route_table t;
  EXPECT_TRUE(t.empty());
  EXPECT_EQ(t.match("a.example.com"), nullptr);
}

TEST(NormalizeSni, LowersAndDropsOneTrailingDot) {
  EXPECT_EQ(normalize_sni("A.B.C."), "a.b.c");
  EXPECT_EQ(normalize_sni("a"), "a");
  EXPECT_EQ(normalize_sni(""), "");
}

}  // namespace
}  // namespace linesman::proxy
