// live_test: histogram buckets, label escaping, the Prometheus text of format_metrics and the
// /api/connections filters (proxy/live.hpp, proxy/admin.hpp).
#include "proxy/live.hpp"

#include "proxy/admin.hpp"

#include <sstream>
#include <string>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) {
    out.push_back(l);
  }
  return out;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const auto& l : lines_of(text)) {
    if (l == line) {
      return true;
    }
  }
  return false;
}

TEST(Histogram, BoundsAreInclusiveAndCumulative) {
  histogram h;
  h.observe_us(1000);        // exactly 0.001 s: le="0.001"
  h.observe_us(1001);        // just above: le="0.005"
  h.observe_us(250'000);     // le="0.25"
  h.observe_us(60'000'000);  // above 10 s: only +Inf
  h.observe_us(-1);          // never happened: ignored
  const auto v = h.snapshot();
  EXPECT_EQ(v.count, 4U);
  EXPECT_EQ(v.cumulative[0], 1U);   // 0.001
  EXPECT_EQ(v.cumulative[1], 2U);   // 0.005
  EXPECT_EQ(v.cumulative[5], 2U);   // 0.1
  EXPECT_EQ(v.cumulative[6], 3U);   // 0.25
  EXPECT_EQ(v.cumulative[11], 3U);  // 10
  EXPECT_EQ(v.cumulative[12], 4U);  // +Inf
  EXPECT_DOUBLE_EQ(v.sum_seconds, 60.252001);
}

TEST(Histogram, TextHasBucketsSumAndCount) {
  histogram h;
  h.observe_us(20'000);
  std::string out;
  append_histogram(out, "x_seconds", "listener=\"a\"", h.snapshot());
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{listener=\"a\",le=\"0.01\"} 0"));
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{listener=\"a\",le=\"0.025\"} 1"));
  EXPECT_TRUE(has_line(out, "x_seconds_bucket{listener=\"a\",le=\"+Inf\"} 1"));
  EXPECT_TRUE(has_line(out, "x_seconds_sum{listener=\"a\"} 0.02"));
  EXPECT_TRUE(has_line(out, "x_seconds_count{listener=\"a\"} 1"));
  EXPECT_EQ(lines_of(out).size(), histogram::kBounds.size() + 3);
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(escape_label("plain"), "plain");
}

TEST(Metrics, FamiliesHaveHelpTypeAndConventionalNames) {
  listener_stats st;
  st.name = "web \"main\"";
  st.ended[static_cast<std::size_t>(stop_phase::connect)]
          [static_cast<std::size_t>(stop_reason::upstream_refused)] = 3;
  st.closed_from_client = 100;
  st.flight[static_cast<std::size_t>(flight_outcome::complete)] = 2;
  live_hub hub;
  hub.listeners.push_back(&st);
  open_by_listener open;
  open[st.name].in_phase.at(static_cast<std::size_t>(live_phase::first_reply)) = 2;
  open[st.name].from_client = 7;
  count_warnings(st, {"sni_after_first_segment", "default_certificate", "not_a_warning"});
  count_warnings(st, {"sni_after_first_segment"});
  const std::string text = format_metrics(hub, open);
  const std::string l = "listener=\"web \\\"main\\\"\"";
  EXPECT_TRUE(has_line(text, "# TYPE linesman_open_connections gauge"));
  EXPECT_TRUE(has_line(text, "linesman_open_connections{" + l + ",phase=\"first_reply\"} 2"));
  EXPECT_TRUE(has_line(text, "linesman_open_connections{" + l + ",phase=\"stream\"} 0"));
  EXPECT_TRUE(has_line(text, "# TYPE linesman_connections_ended_total counter"));
  EXPECT_TRUE(has_line(text, "linesman_connections_ended_total{" + l +
                                 ",phase=\"connect\",reason=\"upstream_refused\"} 3"));
  // Open connections' bytes are included so the counter moves during a long stream.
  EXPECT_TRUE(has_line(text, "linesman_received_bytes_total{" + l + ",from=\"client\"} 107"));
  EXPECT_TRUE(has_line(text, "linesman_peek_outcomes_total{" + l + ",outcome=\"complete\"} 2"));
  EXPECT_TRUE(has_line(text, "# TYPE linesman_warnings_total counter"));
  EXPECT_TRUE(
      has_line(text, "linesman_warnings_total{" + l + ",warning=\"sni_after_first_segment\"} 2"));
  EXPECT_TRUE(
      has_line(text, "linesman_warnings_total{" + l + ",warning=\"default_certificate\"} 1"));
  EXPECT_TRUE(has_line(text, "linesman_warnings_total{" + l + ",warning=\"proxy_v4_mapped\"} 0"));
  EXPECT_TRUE(has_line(text, "# TYPE linesman_first_reply_seconds histogram"));
  // Every sample's family was declared with HELP and TYPE before it, and counters end in _total.
  std::string family;
  for (const auto& line : lines_of(text)) {
    if (line.starts_with("# HELP ")) {
      family = line.substr(7, line.find(' ', 7) - 7);
      continue;
    }
    if (line.starts_with("# TYPE ")) {
      const auto type = line.substr(line.rfind(' ') + 1);
      if (type == "counter") {
        EXPECT_TRUE(family.ends_with("_total")) << family;
      }
      continue;
    }
    ASSERT_FALSE(family.empty()) << line;
    EXPECT_TRUE(line.starts_with(family)) << line;
    EXPECT_TRUE(line.starts_with("linesman_")) << line;
  }
  // A reason outside its phase is never exported.
  EXPECT_EQ(text.find("phase=\"inspect\",reason=\"completed\""), std::string::npos);
}

TEST(Connections, FiltersAndOrder) {
  std::vector<live_copy> open(3);
  open[0].id = "young";
  open[0].age_seconds = 1;
  open[0].phase = live_phase::stream;
  open[0].sni = "App.Example.test";
  open[1].id = "old";
  open[1].age_seconds = 90;
  open[1].phase = live_phase::first_reply;
  open[2].id = "mid";
  open[2].age_seconds = 30;
  open[2].phase = live_phase::first_reply;
  const auto all = connections_json(open, {});
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0]["id"], "old");
  EXPECT_EQ(all[2]["id"], "young");
  EXPECT_TRUE(all[1]["sni"].is_null());
  connection_filter f;
  f.phase = live_phase::first_reply;
  EXPECT_EQ(connections_json(open, f).size(), 2U);
  f.older_than_seconds = 60;
  const auto old = connections_json(open, f);
  ASSERT_EQ(old.size(), 1U);
  EXPECT_EQ(old[0]["id"], "old");
  connection_filter s;
  s.sni = "app.example.test";
  EXPECT_EQ(connections_json(open, s).size(), 1U);
  s.sni = "*.example.test";
  EXPECT_EQ(connections_json(open, s).size(), 1U);
  s.sni = "*.other.test";
  EXPECT_EQ(connections_json(open, s).size(), 0U);
}

TEST(LivePhase, RoundTrips) {
  for (const char* p : {"inspect", "connect", "first_reply", "stream"}) {
    const auto v = parse_live_phase(p);
    ASSERT_TRUE(v.has_value()) << p;
    EXPECT_EQ(to_string(*v), p);
  }
  EXPECT_FALSE(parse_live_phase("route").has_value());
}

// /metrics counts the open connections per listener name over every worker's registry
// (live_hub::count_open); a listener's earlier generation (its own stats, the same name) counts
// with the current one.
TEST(LiveRegistry, CountsOpenConnectionsByListenerName) {
  live_registry r1;
  live_registry r2;
  listener_stats web;
  listener_stats web_before_reload;
  listener_stats db;
  web.name = web_before_reload.name = "web";
  db.name = "db";
  std::uint64_t fc = 5;
  std::uint64_t fu = 11;
  live_conn a;
  live_conn b;
  live_conn c;
  a.listener = &web;
  b.listener = &web_before_reload;
  b.from_client = &fc;
  b.from_upstream = &fu;
  c.listener = &db;
  set_phase(a, live_phase::inspect);
  set_phase(b, live_phase::stream);
  set_phase(c, live_phase::stream);
  r1.link(a);
  r2.link(b);
  r2.link(c);
  live_hub hub;
  hub.registries = {&r1, &r2};
  const open_by_listener open = hub.count_open();
  ASSERT_EQ(open.size(), 2U);
  const open_totals& w = open.at("web");
  EXPECT_EQ(w.in_phase.at(static_cast<std::size_t>(live_phase::inspect)), 1U);
  EXPECT_EQ(w.in_phase.at(static_cast<std::size_t>(live_phase::stream)), 1U);
  EXPECT_EQ(w.in_phase.at(static_cast<std::size_t>(live_phase::connect)), 0U);
  EXPECT_EQ(w.from_client, 5U);
  EXPECT_EQ(w.from_upstream, 11U);
  EXPECT_EQ(open.at("db").in_phase.at(static_cast<std::size_t>(live_phase::stream)), 1U);
  hub.listeners = {&web, &db};
  const std::string text = format_metrics(hub, open);
  EXPECT_TRUE(has_line(text, "linesman_open_connections{listener=\"web\",phase=\"stream\"} 1"));
  EXPECT_TRUE(
      has_line(text, "linesman_received_bytes_total{listener=\"web\",from=\"upstream\"} 11"));
  r1.unlink(a);
  r2.unlink(b);
  r2.unlink(c);
  EXPECT_TRUE(hub.count_open().empty());
}

TEST(LiveRegistry, LinksCopiesAndUnlinks) {
  live_registry reg;
  listener_stats st;
  st.name = "l";
  std::uint64_t fc = 5, fu = 9;
  live_conn a, b;
  a.id = "a";
  b.id = "b";
  a.listener = b.listener = &st;
  a.from_client = &fc;
  a.from_upstream = &fu;
  set_phase(a, live_phase::connect);
  a.accepted_ns = steady_ns();
  b.accepted_ns = steady_ns();
  reg.link(a);
  reg.link(b);
  const std::string sni = "x.test";
  reg.set_strings(a, &sni, nullptr, nullptr);
  std::vector<live_copy> out;
  reg.copy_all(out, steady_ns());
  ASSERT_EQ(out.size(), 2U);
  const auto& ca = out[0].id == "a" ? out[0] : out[1];
  EXPECT_EQ(ca.sni, "x.test");
  EXPECT_EQ(ca.phase, live_phase::connect);
  EXPECT_EQ(ca.from_client, 5U);
  EXPECT_EQ(ca.from_upstream, 9U);
  EXPECT_EQ(ca.listener, "l");
  int accounted = 0;
  reg.unlink(a, [&] { ++accounted; });
  reg.unlink(a);  // twice: no-op
  EXPECT_EQ(accounted, 1);
  out.clear();
  reg.copy_all(out, steady_ns());
  ASSERT_EQ(out.size(), 1U);
  EXPECT_EQ(out[0].id, "b");
  reg.unlink(b);
  out.clear();
  reg.copy_all(out, steady_ns());
  EXPECT_TRUE(out.empty());
}

TEST(AdminConfig, LoopbackOnlyUnlessRemoteWithToken) {
  EXPECT_NO_THROW(check_admin({"127.0.0.1:9000", "", false}, "--admin"));
  EXPECT_NO_THROW(check_admin({"127.8.0.1:0", "", false}, "--admin"));
  EXPECT_NO_THROW(check_admin({"[::1]:9000", "", false}, "--admin"));
  EXPECT_NO_THROW(check_admin({"", "", false}, "--admin"));
  EXPECT_THROW(check_admin({"0.0.0.0:9000", "", false}, "--admin"), config_error);
  EXPECT_THROW(check_admin({"0.0.0.0:9000", "t", false}, "--admin"), config_error);
  EXPECT_THROW(check_admin({"0.0.0.0:9000", "", true}, "--admin"), config_error);
  EXPECT_THROW(check_admin({"[::]:9000", "", false}, "--admin"), config_error);
  EXPECT_THROW(check_admin({"localhost:9000", "", false}, "--admin"), config_error);
  EXPECT_NO_THROW(check_admin({"0.0.0.0:9000", "t", true}, "--admin"));
  try {
    check_admin({"10.0.0.1:9000", "", false}, "admin.listen");
    FAIL();
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("admin.listen"), std::string::npos);
  }
}

TEST(AdminConfig, Yaml) {
  const auto a = load_yaml_admin(
      "admin:\n  listen: 127.0.0.1:9100\n  token: abc\n  allow_remote: true\nlisteners: []\n",
      "f.yaml");
  EXPECT_EQ(a.listen, "127.0.0.1:9100");
  EXPECT_EQ(a.token, "abc");
  EXPECT_TRUE(a.allow_remote);
  EXPECT_TRUE(load_yaml_admin("listeners: []\n", "f.yaml").listen.empty());
  EXPECT_THROW(load_yaml_admin("admin:\n  port: 1\n", "f.yaml"), config_error);
  EXPECT_THROW(load_yaml_admin("admin:\n  allow_remote: maybe\n", "f.yaml"), config_error);
}

}  // namespace
}  // namespace linesman::proxy
