// Tests for proxy/fault: the spec parser on good and hostile specs (every error names the key),
// the SNI glob, and the table's decision (probability 0 never, 1 always, a seed reproduces).
#include "proxy/fault.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

// error_of: the config_error message parse_fault throws for `spec`, or "" when it parses.
std::string error_of(const std::string& spec) {
  try {
    (void)parse_fault(spec, "--fault");
  } catch (const config_error& e) {
    return e.what();
  }
  return "";
}

TEST(ParseFault, EveryFaultOfTheIssue) {
  auto s = parse_fault("split_hello:segments=3,gap=20ms", "--fault");
  EXPECT_EQ(s.kind, fault_kind::split_hello);
  EXPECT_EQ(s.segments, 3U);
  EXPECT_EQ(s.gap, duration(20));
  s = parse_fault("split_hello:records=2,first=3", "--fault");
  EXPECT_EQ(s.records, 2U);
  EXPECT_EQ(s.first_bytes, 3U);
  EXPECT_TRUE(s.needs_hello());
  s = parse_fault("latency:ms=100,jitter=10,direction=down", "--fault");
  EXPECT_EQ(s.latency, duration(100));
  EXPECT_EQ(s.jitter, duration(10));
  EXPECT_TRUE(s.acts_on(false));
  EXPECT_FALSE(s.acts_on(true));
  EXPECT_FALSE(s.needs_hello());
  s = parse_fault("bandwidth:kbps=64", "--fault");
  EXPECT_EQ(s.kbps, 64U);
  s = parse_fault("reset:after=bytes=1000,direction=up", "--fault");
  EXPECT_EQ(s.after, reset_point::bytes);
  EXPECT_EQ(s.after_bytes, 1000U);
  s = parse_fault("reset:after=first_reply", "--fault");
  EXPECT_EQ(s.after, reset_point::first_reply);
  s = parse_fault("blackhole", "--fault");
  EXPECT_EQ(s.kind, fault_kind::blackhole);
  EXPECT_TRUE(s.params.empty());
  s = parse_fault("slow_close:delay=1s,probability=0.25,sni=*.example.test,route=api", "--fault");
  EXPECT_EQ(s.delay, duration(1000));
  EXPECT_DOUBLE_EQ(s.probability, 0.25);
  EXPECT_EQ(s.sni, "*.example.test");
  EXPECT_EQ(s.route, "api");
  EXPECT_TRUE(s.needs_hello());  // an sni= filter needs the hello
  ASSERT_EQ(s.params.size(), 4U);
  EXPECT_EQ(s.params[1], (std::pair<std::string, std::string>{"probability", "0.25"}));
  s = parse_fault("truncate_hello:bytes=0", "--fault");
  EXPECT_EQ(s.bytes, 0U);
  EXPECT_DOUBLE_EQ(parse_fault("blackhole:probability=0", "--fault").probability, 0.0);
  EXPECT_DOUBLE_EQ(parse_fault("blackhole:probability=1", "--fault").probability, 1.0);
}

TEST(ParseFault, HostileSpecsNameTheKey) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"latency:ms=100,colour=red", "key 'colour'"},
      {"latency", "key 'ms'"},
      {"latency:ms=-1", "key 'ms'"},
      {"latency:ms=99999999999999999999999", "key 'ms'"},
      {"latency:ms=1000000", "key 'ms'"},
      {"latency:ms=", "key 'ms'"},
      {"latency:ms", "key 'ms'"},
      {"latency:ms=1,ms=2", "key 'ms'"},
      {"latency:ms=1,", "trailing"},
      {"latency:", "nothing after"},
      {"latency:=5", "empty key"},
      {"bandwidth:kbps=0", "key 'kbps'"},
      {"blackhole:probability=1.5", "key 'probability'"},
      {"blackhole:probability=-0", "key 'probability'"},
      {"blackhole:probability=nan", "key 'probability'"},
      {"blackhole:probability=1e-3", "key 'probability'"},
      {"blackhole:direction=sideways", "key 'direction'"},
      {"blackhole:sni=a b", "key 'sni'"},
      {"blackhole:route=" + std::string(300, 'r'), "key 'route'"},
      {"split_hello", "key 'segments'"},
      {"split_hello:segments=2,records=2", "key 'records'"},
      {"split_hello:segments=0", "key 'segments'"},
      {"split_hello:segments=65", "key 'segments'"},
      {"split_hello:records=2,gap=1s", "key 'gap'"},
      {"split_hello:segments=2,first=3", "key 'first'"},
      {"split_hello:records=1,first=3", "key 'first'"},
      {"split_hello:segments=2,gap=forever", "key 'gap'"},
      {"split_hello:segments=2,gap=11m", "key 'gap'"},
      {"split_hello:segments=2,direction=down", "key 'direction'"},
      {"reset:after=later", "key 'after'"},
      {"reset:after=bytes=", "key 'after'"},
      {"reset:after=bytes=0", "key 'after'"},
      {"slow_close", "key 'delay'"},
      {"truncate_hello:bytes=x", "key 'bytes'"},
      {"truncate_hello", "key 'bytes'"},
      {"explode", "unknown fault 'explode'"},
      {"", "unknown fault ''"},
      {std::string(5000, 'a'), "longer than 1024"},
  };
  for (const auto& [spec, want] : cases) {
    SCOPED_TRACE(spec.substr(0, 60));
    const auto msg = error_of(spec);
    EXPECT_NE(msg.find(want), std::string::npos) << msg;
    EXPECT_EQ(msg.rfind("--fault: ", 0), 0U) << msg;
  }
}

TEST(GlobMatch, StarsQuestionMarksAndCase) {
  EXPECT_TRUE(glob_match("*.example.test", "app.example.test"));
  EXPECT_TRUE(glob_match("*.EXAMPLE.test", "a.b.example.TEST"));
  EXPECT_FALSE(glob_match("*.example.test", "example.test"));
  EXPECT_TRUE(glob_match("app?.test", "app1.test"));
  EXPECT_FALSE(glob_match("app?.test", "app.test"));
  EXPECT_TRUE(glob_match("*", ""));
  EXPECT_FALSE(glob_match("a", ""));
  EXPECT_TRUE(glob_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(glob_match("a*b*c", "axxbyy"));
  // Many stars against a long non-match ends (the walk is not exponential).
  EXPECT_FALSE(glob_match(std::string(100, '*') + "x", std::string(10000, 'a')));
}

TEST(FaultTable, ProbabilityZeroNeverOneAlways) {
  fault_table t(42);
  EXPECT_EQ(t.decide("l", "", "", true), nullptr);  // empty table
  t.add(parse_fault("blackhole:probability=0", "--fault"), "", "config");
  for (int i = 0; i < 1000; ++i) {
    ASSERT_EQ(t.decide("l", "", "", true), nullptr);
  }
  EXPECT_EQ(t.applied(fault_kind::blackhole), 0U);
  t.add(parse_fault("latency:ms=1,probability=1", "--fault"), "", "config");
  for (int i = 0; i < 1000; ++i) {
    auto a = t.decide("l", "", "", true);
    ASSERT_NE(a, nullptr);
    ASSERT_EQ(a->spec.kind, fault_kind::latency);
  }
  EXPECT_EQ(t.applied(fault_kind::latency), 1000U);
}

TEST(FaultTable, SeedReproducesAndHalfIsAboutHalf) {
  const auto run = [](std::uint64_t seed) {
    fault_table t(seed);
    t.add(parse_fault("blackhole:probability=0.5", "--fault"), "", "config");
    std::vector<bool> out;
    for (int i = 0; i < 2000; ++i) {
      out.push_back(t.decide("l", "", "", true) != nullptr);
    }
    return out;
  };
  const auto a = run(7);
  EXPECT_EQ(a, run(7));
  EXPECT_NE(a, run(8));
  const auto hits = std::count(a.begin(), a.end(), true);
  EXPECT_GT(hits, 850);  // binomial(2000, 0.5): 5 sigma is +-112
  EXPECT_LT(hits, 1150);
}

TEST(FaultTable, FiltersAndRemoval) {
  fault_table t(1);
  const auto id = t.add(parse_fault("reset:after=hello,sni=*.a.test", "--fault"), "edge", "admin");
  t.add(parse_fault("blackhole:route=api", "--fault"), "", "admin");
  EXPECT_TRUE(t.needs_hello("edge"));
  EXPECT_FALSE(t.needs_hello("other"));
  EXPECT_EQ(t.decide("edge", "x.b.test", "", true), nullptr);
  EXPECT_EQ(t.decide("other", "x.a.test", "", true), nullptr);
  auto a = t.decide("edge", "x.a.test", "", true);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->spec.kind, fault_kind::reset);
  EXPECT_EQ(t.decide("edge", "x.a.test", "", false), nullptr);  // needs the held hello
  a = t.decide("other", "", "api", false);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->spec.kind, fault_kind::blackhole);
  EXPECT_EQ(t.list().size(), 2U);
  EXPECT_TRUE(t.remove(id));
  EXPECT_FALSE(t.remove(id));
  EXPECT_FALSE(t.needs_hello("edge"));
  EXPECT_EQ(t.decide("edge", "x.a.test", "", true), nullptr);
}

TEST(FaultTable, BoundedInSize) {
  fault_table t(1);
  for (std::size_t i = 0; i < kMaxFaults; ++i) {
    ASSERT_NE(t.add(parse_fault("blackhole", "--fault"), "", "admin"), 0U);
  }
  EXPECT_EQ(t.add(parse_fault("blackhole", "--fault"), "", "admin"), 0U);
  EXPECT_EQ(t.list().size(), kMaxFaults);
}

TEST(FaultTable, ReplaceConfigKeepsTheAdminsFaults) {
  fault_table t(1);
  t.add(parse_fault("blackhole", "--fault"), "", "admin");
  std::vector<std::pair<std::string, fault_spec>> cfg;
  cfg.emplace_back("edge", parse_fault("latency:ms=5", "--fault"));
  t.replace_config(std::move(cfg));
  auto list = t.list();
  ASSERT_EQ(list.size(), 2U);
  EXPECT_EQ(list[0].source, "config");  // config first: it is decided first
  EXPECT_EQ(list[1].source, "admin");
  EXPECT_EQ(t.decide("edge", "", "", true)->spec.kind, fault_kind::latency);
  t.replace_config({});  // a reload that drops the YAML faults
  list = t.list();
  ASSERT_EQ(list.size(), 1U);
  EXPECT_EQ(t.decide("edge", "", "", true)->spec.kind, fault_kind::blackhole);
}

}  // namespace
}  // namespace linesman::proxy
