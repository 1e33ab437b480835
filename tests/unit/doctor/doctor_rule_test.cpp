// Traefik rule grammar: v2 and v3 syntax, precedence, negation, quoting, errors with column.
#include "tools/doctor/rule.hpp"

#include <gtest/gtest.h>

namespace linesman::tools::doctor {
namespace {

std::string canon(std::string_view rule) {
  auto r = parse_rule(rule);
  if (r.error) {
    return "error@" + std::to_string(r.error->col) + ": " + r.error->message;
  }
  return to_string(*r.expr);
}

rule_error error_of(std::string_view rule) {
  auto r = parse_rule(rule);
  EXPECT_TRUE(r.error.has_value()) << rule;
  EXPECT_FALSE(r.expr.has_value()) << rule;
  return r.error.value_or(rule_error{});
}

TEST(DoctorRule, SingleMatcherBackquotedAndDoubleQuoted) {
  EXPECT_EQ(canon("HostSNI(`db.example.com`)"), "HostSNI(`db.example.com`)");
  EXPECT_EQ(canon("HostSNI(\"db.example.com\")"), "HostSNI(`db.example.com`)");
  EXPECT_EQ(canon("  HostSNI( `*` )  "), "HostSNI(`*`)");
  EXPECT_EQ(canon(R"(HostSNIRegexp("^a\\.b$"))"), R"(HostSNIRegexp(`^a\.b$`))");
  EXPECT_EQ(canon(R"(HostSNI("a`b\"c"))"), R"(HostSNI("a`b\"c"))");
}

TEST(DoctorRule, AndBindsTighterThanOr) {
  EXPECT_EQ(canon("HostSNI(`a`) || HostSNI(`b`) && ClientIP(`10.0.0.0/8`)"),
            "(HostSNI(`a`) || (HostSNI(`b`) && ClientIP(`10.0.0.0/8`)))");
  EXPECT_EQ(canon("HostSNI(`a`) && HostSNI(`b`) || ClientIP(`1.2.3.4`)"),
            "((HostSNI(`a`) && HostSNI(`b`)) || ClientIP(`1.2.3.4`))");
}

TEST(DoctorRule, ParenthesesOverridePrecedence) {
  EXPECT_EQ(canon("(HostSNI(`a`) || HostSNI(`b`)) && ClientIP(`10.0.0.0/8`)"),
            "((HostSNI(`a`) || HostSNI(`b`)) && ClientIP(`10.0.0.0/8`))");
  EXPECT_EQ(canon("((HostSNI(`a`)))"), "HostSNI(`a`)");
}

TEST(DoctorRule, NegationBindsToTheNextOperand) {
  EXPECT_EQ(canon("!ClientIP(`10.0.0.0/8`) && HostSNI(`a`)"),
            "(!ClientIP(`10.0.0.0/8`) && HostSNI(`a`))");
  EXPECT_EQ(canon("!(HostSNI(`a`) || HostSNI(`b`))"), "!(HostSNI(`a`) || HostSNI(`b`))");
  EXPECT_EQ(canon("!!HostSNI(`a`)"), "!!HostSNI(`a`)");
}

TEST(DoctorRule, V2MultipleArguments) {
  auto r = parse_rule("HostSNI(`a.example.com`, `b.example.com`)");
  ASSERT_TRUE(r.expr);
  EXPECT_EQ(r.expr->args, (std::vector<std::string>{"a.example.com", "b.example.com"}));
  EXPECT_TRUE(check_tcp_rule(*r.expr, rule_syntax::v2).empty());
  auto v3 = check_tcp_rule(*r.expr, rule_syntax::v3);
  ASSERT_EQ(v3.size(), 1U);
  EXPECT_EQ(v3[0].what, rule_problem::kind::bad_arguments);
  EXPECT_NE(v3[0].fix.find("HostSNI(`a.example.com`) || HostSNI(`b.example.com`)"),
            std::string::npos);
}

TEST(DoctorRule, ErrorsCarryTheColumn) {
  auto e = error_of("HostSNI(`a`) || (HostSNI(`b`)");
  EXPECT_EQ(e.col, 30);
  EXPECT_NE(e.message.find("missing ')'"), std::string::npos);

  e = error_of("HostSNI(`a`) &&");
  EXPECT_EQ(e.col, 16);

  e = error_of("HostSNI('a')");
  EXPECT_EQ(e.col, 9);
  EXPECT_NE(e.message.find("single quotes"), std::string::npos);

  e = error_of("HostSNI(`a)");
  EXPECT_EQ(e.col, 9);
  EXPECT_NE(e.message.find("unterminated"), std::string::npos);

  e = error_of("HostSNI(`a`) HostSNI(`b`)");
  EXPECT_EQ(e.col, 14);

  e = error_of("&& HostSNI(`a`)");
  EXPECT_EQ(e.col, 1);

  e = error_of("HostSNI `a`");
  EXPECT_EQ(e.col, 9);

  e = error_of("HostSNI(`a` `b`)");
  EXPECT_EQ(e.col, 13);

  e = error_of("   ");
  EXPECT_EQ(e.message, "empty rule");

  e = error_of("HostSNI(`a`))");
  EXPECT_EQ(e.col, 13);
}

TEST(DoctorRule, DeepNestingIsBoundedNotACrash) {
  std::string deep(500, '(');
  deep += "HostSNI(`a`)";
  deep += std::string(500, ')');
  auto r = parse_rule(deep);
  ASSERT_TRUE(r.error);
  EXPECT_NE(r.error->message.find("deeply"), std::string::npos);
  std::string nots(500, '!');
  r = parse_rule(nots + "HostSNI(`a`)");
  ASSERT_TRUE(r.error);
}

TEST(DoctorRule, HttpMatchersAreRejectedOnTcp) {
  for (const char* rule : {"Host(`a`)", "PathPrefix(`/x`)", "Headers(`X`, `y`)", "Method(`GET`)",
                           "HostRegexp(`.*`)", "Query(`a=b`)", "HostHeader(`a`)"}) {
    auto r = parse_rule(rule);
    ASSERT_TRUE(r.expr) << rule;
    auto p = check_tcp_rule(*r.expr, rule_syntax::v3);
    ASSERT_EQ(p.size(), 1U) << rule;
    EXPECT_EQ(p[0].what, rule_problem::kind::http_matcher) << rule;
    EXPECT_EQ(p[0].col, 1);
  }
  auto r = parse_rule("HostSNI(`a`) && Host(`a`)");
  auto p = check_tcp_rule(*r.expr, rule_syntax::v3);
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0].col, 17);
  EXPECT_NE(p[0].fix.find("HostSNI(`a`)"), std::string::npos);
}

TEST(DoctorRule, MatcherSetsPerSyntax) {
  auto alpn = parse_rule("ALPN(`h2`)");
  EXPECT_TRUE(check_tcp_rule(*alpn.expr, rule_syntax::v3).empty());
  EXPECT_EQ(check_tcp_rule(*alpn.expr, rule_syntax::v2).size(), 1U);
  auto lower = parse_rule("hostsni(`a`)");
  auto p = check_tcp_rule(*lower.expr, rule_syntax::v3);
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0].what, rule_problem::kind::unknown_matcher);
  EXPECT_NE(p[0].fix.find("HostSNI"), std::string::npos);
  auto v2re = parse_rule("HostSNIRegexp(`{sub:[a-z]+}.example.com`)");
  EXPECT_TRUE(check_tcp_rule(*v2re.expr, rule_syntax::v2).empty());
  EXPECT_EQ(check_tcp_rule(*v2re.expr, rule_syntax::v3).size(), 1U);
  auto empty = parse_rule("HostSNI()");
  ASSERT_TRUE(empty.expr);
  EXPECT_EQ(check_tcp_rule(*empty.expr, rule_syntax::v3).size(), 1U);
  auto wildcard = parse_rule("HostSNI(`*.example.com`)");
  EXPECT_EQ(check_tcp_rule(*wildcard.expr, rule_syntax::v3).size(), 1U);
}

TEST(DoctorRule, SniInfo) {
  auto all = parse_rule("HostSNI(`*`)");
  auto i = sni_info(*all.expr);
  EXPECT_TRUE(i.catch_all);
  EXPECT_FALSE(i.domain_sni);

  auto both = parse_rule("HostSNI(`A.example.com`) || (HostSNI(`*`) && !HostSNI(`b.example.com`))");
  i = sni_info(*both.expr);
  EXPECT_FALSE(i.catch_all);
  EXPECT_TRUE(i.domain_sni);
  EXPECT_EQ(i.literals, std::vector<std::string>{"a.example.com"});

  auto re = parse_rule("HostSNIRegexp(`^x$`)");
  EXPECT_TRUE(sni_info(*re.expr).domain_sni);
  auto ip = parse_rule("ClientIP(`10.0.0.0/8`)");
  EXPECT_FALSE(sni_info(*ip.expr).domain_sni);
}

TEST(DoctorRule, ArbitraryInputGivesExactlyOneOfExprOrError) {
  // Deterministic pseudo-random rules over the grammar's own characters: the parser must never
  // crash or read out of bounds, and always answers with an expression or a located error.
  const std::string alphabet = "HostSNI(`*a.b`)\"'!&|, \\ClientIP";
  std::uint32_t x = 12345;
  for (int i = 0; i < 5000; ++i) {
    std::string rule;
    x = x * 1103515245U + 12345U;
    const auto len = (x >> 16U) % 40U;
    for (std::uint32_t j = 0; j < len; ++j) {
      x = x * 1103515245U + 12345U;
      rule.push_back(alphabet[(x >> 16U) % alphabet.size()]);
    }
    const auto r = parse_rule(rule);
    ASSERT_NE(r.expr.has_value(), r.error.has_value()) << rule;
    if (r.error) {
      EXPECT_GE(r.error->col, 1) << rule;
      EXPECT_LE(r.error->col, static_cast<int>(rule.size()) + 1) << rule;
    } else {
      // A parsed rule prints back to something that parses to the same tree.
      const auto again = parse_rule(to_string(*r.expr));
      ASSERT_TRUE(again.expr) << rule;
      EXPECT_EQ(to_string(*again.expr), to_string(*r.expr)) << rule;
    }
  }
}

}  // namespace
}  // namespace linesman::tools::doctor
