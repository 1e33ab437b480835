#include "proxy/config.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

using std::chrono::milliseconds;

// expect_error: `f` throws config_error and the message contains every needle.
template <typename F>
void expect_error(F&& f, std::initializer_list<std::string> needles) {
  try {
    f();
    ADD_FAILURE() << "no config_error";
  } catch (const config_error& e) {
    const std::string msg = e.what();
    for (const auto& n : needles) {
      EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
    }
  }
}

TEST(ParseDuration, Units) {
  EXPECT_EQ(parse_duration("500ms", "x"), milliseconds(500));
  EXPECT_EQ(parse_duration("5s", "x"), milliseconds(5000));
  EXPECT_EQ(parse_duration("2m", "x"), milliseconds(120000));
  EXPECT_EQ(parse_duration("1h", "x"), milliseconds(3600000));
  EXPECT_EQ(parse_duration("1.5s", "x"), milliseconds(1500));
  EXPECT_EQ(parse_duration("0s", "x"), milliseconds(0));
}

TEST(ParseDuration, RejectsGarbageAndNamesTheFlag) {
  for (const char* bad :
       {"", "5", "s", "-1s", "5x", "5 s", "1.s", ".5s", "5sec", "1e3s", "99999999h"}) {
    expect_error([&] { parse_duration(bad, "--idle-timeout"); },
                 {"--idle-timeout", "bad duration"});
  }
}

TEST(ParseHostPort, Forms) {
  auto a = parse_host_port("127.0.0.1:0", "--listen", true);
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 0);
  auto b = parse_host_port("[::1]:8443", "--listen", true);
  EXPECT_EQ(b.host, "::1");
  EXPECT_EQ(b.port, 8443);
  EXPECT_EQ(b.text, "[::1]:8443");
  auto c = parse_host_port("db.internal:5432", "--upstream", false);
  EXPECT_EQ(c.host, "db.internal");
  EXPECT_EQ(c.port, 5432);
}

TEST(ParseHostPort, RejectsBadForms) {
  for (const char* bad : {"", "host", ":80", "host:", "host:x", "host:65536", "::1:80", "[::1]80",
                          "[zz]:80", "a b:80"}) {
    expect_error([&] { parse_host_port(bad, "--upstream", false); }, {"--upstream"});
  }
  expect_error([] { parse_host_port("host:0", "--upstream", false); }, {"--upstream", "port"});
}

TEST(BuildRunConfig, FlagsMakeOneListener) {
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  cli.upstream = "127.0.0.1:9";
  cli.routes = {"a.example.com=127.0.0.1:10", "*.b.example.com=[::1]:11"};
  cli.idle = "2m";
  const auto cfg = build_run_config(cli, std::nullopt);
  ASSERT_EQ(cfg.listeners.size(), 1U);
  const auto& l = cfg.listeners[0];
  EXPECT_EQ(l.name, "127.0.0.1:0");
  EXPECT_EQ(l.access_log, "-");
  ASSERT_EQ(l.routes.size(), 2U);
  EXPECT_EQ(l.routes[1].sni, "*.b.example.com");
  EXPECT_EQ(l.routes[1].upstream.host, "::1");
  EXPECT_EQ(l.limits.idle, milliseconds(120000));
  EXPECT_EQ(l.limits.peek, milliseconds(10000));
  EXPECT_EQ(l.limits.drain, milliseconds(10000));
}

TEST(BuildRunConfig, BadFlagsNameTheFlag) {
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--upstream"});
  cli.upstream = "127.0.0.1:9";
  cli.routes = {"nohost"};
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--route"});
  cli.routes = {"a.*.com=127.0.0.1:1"};
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--route", "a.*.com"});
  cli.routes = {};
  cli.listen = "localhost:80";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--listen"});
  cli.listen = "127.0.0.1:0";
  cli.connect = "10";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--connect-timeout"});
  expect_error([] { build_run_config({}, std::string("/nonexistent/linesman.yaml")); },
               {"--config", "/nonexistent/linesman.yaml"});
}

constexpr const char* kGood = R"(defaults:
  timeouts: {peek: 2s, idle: 1m}
listeners:
  - name: edge
    listen: 127.0.0.1:0
    upstream: traefik:443
    access_log: /tmp/edge.log
    routes:
      - {sni: "*.example.com", upstream: "127.0.0.1:8443", name: wild}
      - sni: app.example.com
        upstream: "[::1]:9443"
  - listen: "[::1]:0"
    upstream: 127.0.0.1:6379
    timeouts: {connect: 500ms}
)";

TEST(YamlConfig, ParsesListenersRoutesAndTimeouts) {
  const auto ls = load_yaml_listeners(kGood, "cfg.yaml", {}, {});
  ASSERT_EQ(ls.size(), 2U);
  EXPECT_EQ(ls[0].name, "edge");
  EXPECT_EQ(ls[0].access_log, "/tmp/edge.log");
  ASSERT_TRUE(ls[0].upstream.has_value());
  EXPECT_EQ(ls[0].upstream->host, "traefik");
  ASSERT_EQ(ls[0].routes.size(), 2U);
  EXPECT_EQ(ls[0].routes[0].name, "wild");
  EXPECT_EQ(ls[0].routes[1].name, "app.example.com");
  EXPECT_EQ(ls[0].limits.peek, milliseconds(2000));
  EXPECT_EQ(ls[0].limits.idle, milliseconds(60000));
  EXPECT_EQ(ls[0].limits.connect, milliseconds(10000));
  EXPECT_EQ(ls[1].name, "[::1]:0");
  EXPECT_EQ(ls[1].limits.connect, milliseconds(500));
  EXPECT_EQ(ls[1].limits.peek, milliseconds(2000));
  EXPECT_EQ(ls[1].access_log, "-");
}

TEST(YamlConfig, TimeoutFlagsOverrideFileDefaultsNotListenerTimeouts) {
  cli_listener flags;
  flags.connect = "3s";
  flags.peek = "4s";
  const auto ls = load_yaml_listeners(kGood, "cfg.yaml", {}, flags);
  EXPECT_EQ(ls[0].limits.connect, milliseconds(3000));
  EXPECT_EQ(ls[0].limits.peek, milliseconds(4000));
  EXPECT_EQ(ls[1].limits.connect, milliseconds(500));
}

TEST(YamlConfig, LogFormatPerListenerWithTheFlagAsDefault) {
  constexpr const char* kTwo = R"(listeners:
  - {listen: 127.0.0.1:0, upstream: a:1, log_format: ecs}
  - {listen: 127.0.0.1:0, upstream: a:1}
)";
  EXPECT_EQ(load_yaml_listeners(kTwo, "c.yaml", {}, {})[1].access_log_format, log_format::linesman);
  cli_listener flags;
  flags.log_format = "otel";
  const auto ls = load_yaml_listeners(kTwo, "c.yaml", {}, flags);
  EXPECT_EQ(ls[0].access_log_format, log_format::ecs);
  EXPECT_EQ(ls[1].access_log_format, log_format::otel);
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - {listen: 127.0.0.1:0, upstream: a:1, log_format: gelf}\n", "c.yaml",
            {}, {});
      },
      {"c.yaml:2", "listeners[0].log_format", "gelf"});
  cli_listener bad;
  bad.listen = "127.0.0.1:0";
  bad.upstream = "a:1";
  bad.log_format = "json";
  expect_error([&] { build_run_config(bad, std::nullopt); }, {"--log-format", "json"});
}

TEST(YamlConfig, ErrorsNameFileLineAndKey) {
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:0\n    upstream: a:1\n    timeouts:\n      idle: "
            "5x\n",
            "cfg.yaml", {}, {});
      },
      {"cfg.yaml:5", "listeners[0].timeouts.idle", "5x"});
  expect_error(
      [] {
        load_yaml_listeners("listeners:\n  - listen: 127.0.0.1:0\n    upstrem: a:1\n", "cfg.yaml",
                            {}, {});
      },
      {"cfg.yaml:3", "listeners[0].upstrem", "unknown key"});
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:0\n    upstream: a:1\n    routes:\n      - sni: "
            "x.example.com\n",
            "c.yaml", {}, {});
      },
      {"c.yaml:5", "listeners[0].routes[0].upstream", "missing"});
  expect_error(
      [] {
        load_yaml_listeners("listeners:\n  - listen: 127.0.0.1:99999\n    upstream: a:1\n",
                            "c.yaml", {}, {});
      },
      {"c.yaml:2", "listeners[0].listen"});
  expect_error([] { load_yaml_listeners("listeners: [\n", "broken.yaml", {}, {}); },
               {"broken.yaml:"});
  expect_error([] { load_yaml_listeners("defaults: {}\n", "c.yaml", {}, {}); },
               {"c.yaml", "listeners"});
  expect_error(
      [] { load_yaml_listeners("listeners:\n  - listen: 127.0.0.1:0\n", "c.yaml", {}, {}); },
      {"c.yaml:2", "listeners[0]", "upstream"});
}

TEST(Capture, FlagsAndYaml) {
  EXPECT_EQ(parse_capture_bytes("all", "x"), ~std::uint64_t{0});
  EXPECT_EQ(parse_capture_bytes("65536", "x"), 65536U);
  EXPECT_EQ(parse_capture_bytes("64k", "x"), 65536U);
  EXPECT_EQ(parse_capture_bytes("2M", "x"), 2U * 1024 * 1024);
  for (const char* bad : {"", "0", "-1", "k", "1.5k", "ALL", "1G", "99999999999999999999"}) {
    expect_error([&] { parse_capture_bytes(bad, "--capture-bytes"); }, {"--capture-bytes"});
  }
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  cli.upstream = "127.0.0.1:9";
  EXPECT_TRUE(build_run_config(cli, std::nullopt).listeners[0].capture.dir.empty());  // off
  cli.capture_bytes = "all";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--capture-bytes", "--capture"});
  cli.capture = "/tmp/caps";
  const auto c = build_run_config(cli, std::nullopt).listeners[0].capture;
  EXPECT_EQ(c.dir, "/tmp/caps");
  EXPECT_EQ(c.bytes_per_direction, ~std::uint64_t{0});

  const auto ls = load_yaml_listeners(
      "listeners:\n  - listen: 127.0.0.1:1\n    upstream: 127.0.0.1:2\n"
      "    capture: {dir: /var/caps, bytes: 1k, max_total_bytes: 10M}\n",
      "c.yaml", {}, {});
  EXPECT_EQ(ls[0].capture.dir, "/var/caps");
  EXPECT_EQ(ls[0].capture.bytes_per_direction, 1024U);
  EXPECT_EQ(ls[0].capture.max_total_bytes, 10U * 1024 * 1024);
  expect_error(
      [&] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:1\n    upstream: 127.0.0.1:2\n"
            "    capture: {dir: /x, bites: 1}\n",
            "c.yaml", {}, {});
      },
      {"c.yaml", "capture", "bites"});
  expect_error(
      [&] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:1\n    upstream: 127.0.0.1:2\n"
            "    capture: {bytes: 1}\n",
            "c.yaml", {}, {});
      },
      {"c.yaml", "capture.dir", "missing"});
}

// Issue 20: a zero timeout ends every connection at once; it is a typo, not a setting.
TEST(HostileConfig, ZeroTimeoutsAreRejected) {
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  cli.upstream = "127.0.0.1:9";
  cli.idle = "0s";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--idle-timeout", "above 0"});
  cli.idle.reset();
  cli.peek = "0ms";
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--peek-timeout", "above 0"});
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:0\n    upstream: a:1\n    timeouts:\n      "
            "connect: 0s\n",
            "c.yaml", {}, {});
      },
      {"c.yaml:5", "listeners[0].timeouts.connect", "above 0"});
}

// Issue 20: yaml-cpp keeps one of two equal keys silently; a duplicated listen: must fail.
TEST(HostileConfig, DuplicateKeyIsRejected) {
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - listen: 127.0.0.1:0\n    upstream: a:1\n    listen: 127.0.0.1:1\n",
            "c.yaml", {}, {});
      },
      {"c.yaml:4", "listeners[0].listen", "given twice"});
  expect_error([] { load_yaml_listeners("listeners: []\nlisteners: []\n", "c.yaml", {}, {}); },
               {"c.yaml:2", "listeners", "given twice"});
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("linesman_cfg_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

// Issue 20: a directory is not a config file (it used to parse as an empty document).
TEST(HostileConfig, DirectoryConfigCannotBeRead) {
  const auto dir = temp_path("dir");
  std::filesystem::create_directories(dir);
  expect_error([&] { build_run_config({}, dir); }, {"--config", "cannot read", dir});
  std::filesystem::remove(dir);
}

// Issue 20: the config file is read whole; a huge file is refused before reading it.
TEST(HostileConfig, OversizedConfigIsRefused) {
  const auto path = temp_path("big.yaml");
  {
    std::ofstream out(path);
    const std::string comment = "# " + std::string(1000, 'x') + "\n";
    for (int i = 0; i < 5000; ++i) {
      out << comment;
    }
    out << "listeners: []\n";
  }
  expect_error([&] { build_run_config({}, path); }, {"--config", path, "too large"});
  std::filesystem::remove(path);
}

// Issue 20: listener names reach JSON and Prometheus labels; invalid UTF-8 is refused here.
TEST(HostileConfig, NonUtf8ListenerNameIsRejected) {
  cli_listener cli;
  cli.listen = "127.0.0.1:0";
  cli.upstream = "127.0.0.1:9";
  cli.name = std::string("edge\xff");
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--listener-name", "UTF-8"});
  cli.name = std::string("edge\nx");
  expect_error([&] { build_run_config(cli, std::nullopt); }, {"--listener-name"});
  expect_error(
      [] {
        load_yaml_listeners(
            "listeners:\n  - name: a\xff\n    listen: 127.0.0.1:0\n    "
            "upstream: a:1\n",
            "c.yaml", {}, {});
      },
      {"c.yaml:2", "listeners[0].name", "UTF-8"});
  cli.name = "edge-\xc3\xa9";  // valid UTF-8 passes
  EXPECT_EQ(build_run_config(cli, std::nullopt).listeners[0].name, "edge-\xc3\xa9");
}

// Issue 16: a --config file (read at start and on every reload) is control-plane input an
// operator or a tool writes; none of these may crash, hang or print raw bytes.
constexpr const char* kGoodConfig =
    "defaults:\n  timeouts: {peek: 5s, idle: 1h}\nlisteners:\n  - name: web\n"
    "    listen: 127.0.0.1:8443\n    upstream: 127.0.0.1:443\n    routes:\n"
    "      - {sni: a.example.com, upstream: '127.0.0.1:9443'}\n    timeouts: {connect: 2s}\n";

// load_both: what a reload does with a text: the listeners, then the admin section.
void load_both(const std::string& text) {
  (void)load_yaml_listeners(text, "h.yaml", {}, {});
  (void)load_yaml_admin(text, "h.yaml");
}

TEST(HostileConfig, DeepNestingIsNamed) {
  for (const std::string open : {"[", "{a: "}) {
    std::string text = "listeners: ";
    for (int i = 0; i < 5000; ++i) {
      text += open;
    }
    expect_error([&] { load_both(text); }, {"h.yaml:", "nested too deeply"});
  }
}

TEST(HostileConfig, AliasBombIsRefusedWithoutExpanding) {
  // Nine levels of nine aliases: 9^9 leaves if expanded. yaml-cpp shares aliased nodes, and the
  // key checks refuse the document before anything walks it.
  std::string text = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i < 10; ++i) {
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) {
      text += (k ? ", *a" : "*a") + std::to_string(i - 1);
    }
    text += "]\n";
  }
  expect_error([&] { load_both(text + "listeners: [*a9]\n"); }, {"h.yaml:1", "a0: unknown key"});
}

TEST(HostileConfig, ControlBytesAndBadUtf8AreEscapedInMessages) {
  std::string nul = "listeners:\n  - listen: '127.0.0.1:0";
  nul += '\0';
  nul += "'\n    upstream: '127.0.0.1:9'\n";
  expect_error([&] { load_both(nul); }, {"h.yaml:2", "listeners[0].listen", "\\x00"});
  expect_error(
      [] { load_both("listeners:\n  - listen: '127.0.0.1:0'\n    upstream: 'a\xff:9'\n"); },
      {"h.yaml:3", "listeners[0].upstream", "\\xff"});
  expect_error(
      [] { load_both("listeners:\n  - {listen: '127.0.0.1:0', upstream: 'a:9', \xfe: 1}\n"); },
      {"h.yaml:2", "\\xfe", "unknown key"});
  expect_error([] { load_both("listeners:\n  - {? [a, b] : 1}\n"); },
               {"h.yaml:2", "a key must be a name"});
}

// A few hundred broken variants of a good file: every prefix (a file saved half-way, an editor's
// crash) and seeded byte flips. Each parses or throws config_error with a one-line, printable
// message; nothing else escapes.
TEST(HostileConfig, MutatedFilesGiveNamedErrorsOnly) {
  const std::string good = kGoodConfig;
  ASSERT_NO_THROW(load_both(good));
  std::vector<std::string> variants;
  for (std::size_t n = 0; n < good.size(); n += 1) {
    variants.push_back(good.substr(0, n));
  }
  std::uint32_t seed = 16;
  const auto next = [&seed] {
    seed = seed * 1664525U + 1013904223U;  // a fixed LCG: the same variants every run
    return seed >> 8U;
  };
  const std::string specials = std::string("\0\t\n\r:{}[]&*!|>'\"%@`#-?,\xff\xc3", 24);
  for (int i = 0; i < 300; ++i) {
    std::string v = good;
    for (int flips = 0; flips < 1 + static_cast<int>(next() % 3); ++flips) {
      v[next() % v.size()] = specials[next() % specials.size()];
    }
    variants.push_back(std::move(v));
  }
  int refused = 0;
  for (const auto& v : variants) {
    try {
      load_both(v);
    } catch (const config_error& e) {
      ++refused;
      EXPECT_EQ(check_text(e.what()), text_fault::none) << e.what();
    } catch (const std::exception& e) {
      ADD_FAILURE() << "not a config_error: " << e.what() << " for:\n" << v;
    }
  }
  EXPECT_GT(refused, 300);
}

TEST(CheckText, Utf8AndControlCharacters) {
  EXPECT_EQ(check_text("edge-1 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), text_fault::none);
  EXPECT_EQ(check_text("a\tb"), text_fault::control);
  EXPECT_EQ(check_text("\x7f"), text_fault::control);
  EXPECT_EQ(check_text("\xff"), text_fault::not_utf8);
  EXPECT_EQ(check_text("\xc0\xaf"), text_fault::not_utf8);          // overlong '/'
  EXPECT_EQ(check_text("\xed\xa0\x80"), text_fault::not_utf8);      // a UTF-16 surrogate
  EXPECT_EQ(check_text("\xf4\x90\x80\x80"), text_fault::not_utf8);  // above U+10FFFF
  EXPECT_EQ(check_text("\xe2\x82"), text_fault::not_utf8);          // cut short
}

}  // namespace
}  // namespace linesman::proxy
