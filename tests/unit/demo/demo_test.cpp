// demo_test: the parts of `linesman demo` that judge and show records (no processes here; the
// whole demo runs in tests/integration/test_demo.py).
#include "tools/demo/demo.hpp"

#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace linesman::tools::demo {
namespace {

using nlohmann::json;

json record(const std::string& phase, const std::string& reason, const std::string& hint) {
  return json{{"listener", "x"},
              {"stop", {{"phase", phase}, {"reason", reason}, {"by", "upstream"}}},
              {"hint", hint}};
}

outcome scenario(expectation e, std::optional<json> rec) {
  return outcome{
      "2-router-rule", "router rule matches no SNI", std::move(e), "eof", std::move(rec), ""};
}

TEST(DemoEvaluate, NoRecordDiffers) {
  auto o = scenario({"connect", {"upstream_refused"}, nullptr}, std::nullopt);
  evaluate(o);
  EXPECT_EQ(o.mismatch, "no record");
}

TEST(DemoEvaluate, PhaseAndReasonMustMatch) {
  auto o = scenario({"first_reply", {"upstream_closed_silently"}, nullptr},
                    record("first_reply", "upstream_reset", "h"));
  evaluate(o);
  EXPECT_EQ(o.mismatch,
            "expected first_reply / upstream_closed_silently, got first_reply / upstream_reset");

  o = scenario({"first_reply", {"upstream_closed_silently"}, nullptr},
               record("stream", "upstream_closed_silently", "h"));
  evaluate(o);
  EXPECT_NE(o.mismatch, "");
}

TEST(DemoEvaluate, AnyListedReasonIsAccepted) {
  auto o = scenario({"stream", {"completed", "client_closed", "upstream_closed"}, nullptr},
                    record("stream", "client_closed", "h"));
  evaluate(o);
  EXPECT_EQ(o.mismatch, "");
  o = scenario({"stream", {"completed", "client_closed"}, nullptr},
               record("stream", "idle_timeout", "h"));
  evaluate(o);
  EXPECT_EQ(o.mismatch, "expected stream / completed|client_closed, got stream / idle_timeout");
}

TEST(DemoEvaluate, CheckRunsOnlyAfterTheStopMatches) {
  int calls = 0;
  const auto check = [&calls](const json& r) -> std::string {
    ++calls;
    return r.contains("tls") ? "" : "tls is missing";
  };
  auto o = scenario({"first_reply", {"upstream_closed_silently"}, check},
                    record("connect", "upstream_refused", "h"));
  evaluate(o);
  EXPECT_EQ(calls, 0);
  o = scenario({"first_reply", {"upstream_closed_silently"}, check},
               record("first_reply", "upstream_closed_silently", "h"));
  evaluate(o);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(o.mismatch, "tls is missing");
}

TEST(DemoStoppedAt, MissingFieldsShowAsDash) {
  EXPECT_EQ(stopped_at(record("connect", "upstream_refused", "h")),
            "connect / upstream_refused / upstream");
  EXPECT_EQ(stopped_at(json{{"stop", {{"phase", "inspect"}}}}), "inspect / - / -");
  EXPECT_EQ(stopped_at(json::array()), "- / - / -");
}

TEST(DemoTable, EveryLineFitsTheWidthAndLongHintsAreCut) {
  const std::string hint(300, 'h');
  auto ok = scenario({"first_reply", {"upstream_closed_silently"}, nullptr},
                     record("first_reply", "upstream_closed_silently", hint));
  evaluate(ok);
  auto bad = scenario({"connect", {"upstream_refused"}, nullptr},
                      record("first_reply", "upstream_closed_silently", hint));
  bad.id = "1-no-entrypoint";
  evaluate(bad);
  auto none = scenario({"connect", {"upstream_refused"}, nullptr}, std::nullopt);
  none.id = "4b-no-sni";
  evaluate(none);
  const std::string t = render_table({ok, bad, none}, 100);
  std::istringstream in(t);
  std::string line;
  int lines = 0;
  int hints = 0;
  while (std::getline(in, line)) {
    ++lines;
    EXPECT_LE(line.size(), 100u) << line;
    if (line.rfind("    hint: ", 0) == 0) {
      ++hints;
      EXPECT_EQ(line.size(), 100u);
      EXPECT_EQ(line.substr(97), "...");
    }
  }
  EXPECT_EQ(hints, 2);  // the scenario without a record has no hint line
  EXPECT_NE(t.find("2-router-rule      first_reply / upstream_closed_silently / upstream"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("    differs: expected connect / upstream_refused, got first_reply"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("4b-no-sni          (no record)"), std::string::npos) << t;
  EXPECT_NE(t.find("    differs: no record"), std::string::npos) << t;
  EXPECT_GT(lines, 10);
}

}  // namespace
}  // namespace linesman::tools::demo
