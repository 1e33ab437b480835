#include "proxy/stop.hpp"

#include <fstream>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace linesman::proxy {
namespace {

nlohmann::json load_schema() {
  std::ifstream in(std::string(LINESMAN_TEST_DATA) + "/access-log.schema.json");
  return nlohmann::json::parse(in);
}

TEST(Stop, NamesMatchTheSchemaEnums) {
  const auto schema = load_schema();
  const auto& stop = schema["properties"]["stop"]["properties"];
  std::set<std::string> reasons;
  for (const auto& r : stop["reason"]["enum"]) {
    reasons.insert(r.get<std::string>());
  }
  for (const auto& r : reasons) {
    const auto parsed = parse_stop_reason(r);
    ASSERT_TRUE(parsed.has_value()) << r;
    EXPECT_EQ(to_string(*parsed), r);
  }
  for (const auto& p : stop["phase"]["enum"]) {
    const auto parsed = parse_stop_phase(p.get<std::string>());
    ASSERT_TRUE(parsed.has_value()) << p;
    EXPECT_EQ(to_string(*parsed), p.get<std::string>());
  }
}

TEST(Stop, EveryTaxonomyPairHasItsOwnHint) {
  // docs/access-log.md's stop table, written out independently of stop.cpp.
  const std::set<std::pair<std::string, std::string>> taxonomy = {
      {"inspect", "client_silent"},
      {"inspect", "client_closed"},
      {"inspect", "client_reset"},
      {"inspect", "hello_incomplete"},
      {"inspect", "hello_malformed"},
      {"inspect", "hello_too_large"},
      {"route", "no_route"},
      {"connect", "upstream_refused"},
      {"connect", "upstream_timeout"},
      {"connect", "upstream_unreachable"},
      {"connect", "upstream_resolve_failed"},
      {"connect", "upstream_error"},
      {"connect", "client_gave_up"},
      {"first_reply", "upstream_closed_silently"},
      {"first_reply", "upstream_reset"},
      {"first_reply", "upstream_silent"},
      {"first_reply", "upstream_tls_alert"},
      {"first_reply", "upstream_not_tls"},
      {"first_reply", "upstream_error_reply"},
      {"first_reply", "client_gave_up"},
      {"stream", "completed"},
      {"stream", "client_closed"},
      {"stream", "upstream_closed"},
      {"stream", "client_reset"},
      {"stream", "upstream_reset"},
      {"stream", "idle_timeout"},
      {"stream", "proxy_shutdown"},
      {"stream", "proxy_error"},
  };
  std::set<std::string_view> hints;
  for (const auto& [phase, reason] : taxonomy) {
    const auto p = parse_stop_phase(phase);
    const auto r = parse_stop_reason(reason);
    ASSERT_TRUE(p && r) << phase << "/" << reason;
    EXPECT_TRUE(reason_allowed_in(*p, *r)) << phase << "/" << reason;
    hints.insert(default_hint(*p, *r));
  }
  EXPECT_EQ(hints.size(), taxonomy.size()) << "two taxonomy pairs share a hint";
  EXPECT_FALSE(reason_allowed_in(stop_phase::inspect, stop_reason::completed));
  EXPECT_FALSE(reason_allowed_in(stop_phase::stream, stop_reason::no_route));
}

}  // namespace
}  // namespace linesman::proxy
