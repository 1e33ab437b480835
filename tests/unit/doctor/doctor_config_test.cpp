// Reading Traefik configuration (YAML, TOML, docker labels) with file:line, and the checks that
// need no network: address parsing, listeners of this machine.
#include "tests/unit/test_data.hpp"
#include "tools/doctor/checks.hpp"
#include "tools/doctor/config.hpp"
#include "tools/doctor/report.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <stdexcept>

#include <gtest/gtest.h>

namespace linesman::tools::doctor {
namespace {

using linesman::test::kDoctorData;

std::vector<std::string> codes(const std::vector<finding>& fs) {
  std::vector<std::string> out;
  for (const auto& f : fs) {
    out.push_back(f.code);
  }
  return out;
}

const finding* find_code(const std::vector<finding>& fs, const std::string& code,
                         const std::string& router = {}) {
  for (const auto& f : fs) {
    if (f.code == code && (router.empty() || f.router == router)) {
      return &f;
    }
  }
  return nullptr;
}

TEST(DoctorConfig, YamlKeepsLinesAndIgnoresCaseOfOptionNames) {
  const std::string text =
      "tcp:\n"
      "  routers:\n"
      "    r1:\n"
      "      EntryPoints: [a, b]\n"
      "      rule: HostSNI(`x`)\n"
      "      service: s\n"
      "      tls:\n"
      "        passthrough: true\n"
      "  services:\n"
      "    s:\n"
      "      loadBalancer:\n"
      "        servers:\n"
      "          - address: \"10.0.0.1:5432\"\n";
  traefik_config cfg;
  read_dynamic(parse_yaml_text(text, "d.yml"), cfg);
  ASSERT_EQ(cfg.tcp_routers.size(), 1U);
  const auto& r = cfg.tcp_routers[0];
  EXPECT_EQ(r.loc.str(), "d.yml:3");
  EXPECT_EQ(r.entry_points, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.entry_points_loc.line, 4);
  EXPECT_EQ(r.rule_loc.line, 5);
  EXPECT_EQ(r.rule_col, 13);  // plain scalar: the rule's first character in the file
  EXPECT_EQ(r.service_loc.line, 6);
  EXPECT_TRUE(r.tls.present);
  EXPECT_TRUE(r.tls.passthrough);
  ASSERT_EQ(cfg.tcp_services.size(), 1U);
  ASSERT_EQ(cfg.tcp_services[0].servers.size(), 1U);
  EXPECT_EQ(cfg.tcp_services[0].servers[0].loc.line, 13);
}

TEST(DoctorConfig, TomlKeepsLines) {
  const std::string text =
      "[tcp.routers.r1]\n"
      "  entryPoints = [\"a\"]\n"
      "  rule = \"HostSNI(`*`)\"\n"
      "  service = \"s\"\n"
      "\n"
      "[[tcp.services.s.loadBalancer.servers]]\n"
      "  address = \"10.0.0.1:5432\"\n"
      "[tcp.routers.r2]\n"
      "  rule = \"HostSNI(`a`)\"\n"
      "  [tcp.routers.r2.tls]\n";
  traefik_config cfg;
  read_dynamic(parse_toml_text(text, "d.toml"), cfg);
  ASSERT_EQ(cfg.tcp_routers.size(), 2U);
  EXPECT_EQ(cfg.tcp_routers[0].entry_points_loc.line, 2);
  EXPECT_EQ(cfg.tcp_routers[0].rule_loc.line, 3);
  EXPECT_EQ(cfg.tcp_routers[0].rule_col, 11);  // one past the opening quote
  EXPECT_FALSE(cfg.tcp_routers[0].tls.present);
  EXPECT_TRUE(cfg.tcp_routers[1].tls.present);  // an empty [..tls] table enables TLS
  ASSERT_EQ(cfg.tcp_services.size(), 1U);
  EXPECT_EQ(cfg.tcp_services[0].servers.at(0).loc.line, 7);
}

TEST(DoctorConfig, SyntaxErrorsNameFileAndLine) {
  try {
    parse_yaml_text("tcp:\n  routers: [\n", "bad.yml");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad.yml:", 0), 0U) << e.what();
  }
  try {
    parse_toml_text("[tcp.routers.a]\nrule = \n", "bad.toml");
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(std::string(e.what()).rfind("bad.toml:2:", 0), 0U) << e.what();
  }
  EXPECT_THROW(load_tree(kDoctorData + "does-not-exist.yml"), std::runtime_error);
}

TEST(DoctorConfig, StaticNamesTheFileProvider) {
  auto cfg = load_config({kDoctorData + "clean/traefik.yml", {}, {}, {}});
  EXPECT_TRUE(cfg.have_static);
  EXPECT_EQ(cfg.entrypoints.size(), 4U);
  ASSERT_EQ(cfg.dynamic_files.size(), 1U);
  EXPECT_EQ(cfg.dynamic_files[0], kDoctorData + "clean/dynamic.yml");
  EXPECT_EQ(cfg.tcp_routers.size(), 3U);
  EXPECT_EQ(cfg.http_routers.size(), 2U);
  EXPECT_EQ(cfg.tcp_services.size(), 4U);

  auto toml = load_config({kDoctorData + "clean_toml/traefik.toml", {}, {}, {}});
  EXPECT_EQ(toml.dynamic_files.size(), 2U);  // the directory provider, read recursively
  EXPECT_EQ(toml.tcp_routers.size(), 2U);
}

TEST(DoctorConfig, MissingProviderFileNamesBothFiles) {
  const auto dir = ::testing::TempDir() + "doctor_missing_provider";
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir + "/traefik.yml")
        << "providers:\n  file:\n    filename: /nonexistent/d.yml\n";
  }
  try {
    load_config({dir + "/traefik.yml", {}, {}, {}});
    FAIL() << "no exception";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/d.yml"), std::string::npos) << m;
    EXPECT_NE(m.find("traefik.yml"), std::string::npos) << m;
  }
}

TEST(DoctorChecks, CleanConfigurationsHaveNoFindings) {
  for (const char* f : {"clean/traefik.yml", "clean_toml/traefik.toml"}) {
    auto cfg = load_config({kDoctorData + f, {}, {}, {}});
    auto fs = check_config(cfg, rule_syntax::v3);
    EXPECT_TRUE(fs.empty()) << f << ": " << (fs.empty() ? "" : fs[0].message);
  }
}

TEST(DoctorChecks, DockerLabels) {
  auto cfg = load_config(
      {kDoctorData + "docker/traefik.yml", {}, {kDoctorData + "docker/inspect.json"}, {}});
  ASSERT_EQ(cfg.tcp_routers.size(), 2U);
  const auto& pg = cfg.tcp_routers[0];
  EXPECT_EQ(pg.provider, "docker");
  EXPECT_EQ(pg.service, "pg");  // the container's only TCP service
  EXPECT_EQ(pg.rule_loc.line, 11);
  auto fs = check_config(cfg, rule_syntax::v3);
  const auto* m = find_code(fs, "entrypoint_missing", "pg@docker");
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->loc.line, 12);
  EXPECT_NE(find_code(fs, "rule_http_matcher", "pg@docker"), nullptr);
  EXPECT_NE(find_code(fs, "passthrough_tls_ignored", "pg@docker"), nullptr);
  EXPECT_NE(find_code(fs, "hostsni_without_tls", "redis@docker"), nullptr);
  EXPECT_NE(find_code(fs, "service_address_malformed"), nullptr);
  EXPECT_EQ(fs.size(), 5U) << ::testing::PrintToString(codes(fs));
}

TEST(DoctorChecks, HostPortParsing) {
  std::string why;
  auto hp = parse_host_port(":8443", why);
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "");
  EXPECT_EQ(hp->port, 8443);
  hp = parse_host_port("[::]:443/tcp", why);
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp->host, "::");
  hp = parse_host_port("0.0.0.0:53/udp", why);
  ASSERT_TRUE(hp);
  EXPECT_TRUE(hp->udp);
  EXPECT_FALSE(parse_host_port("db", why));
  EXPECT_EQ(why.rfind("no port", 0), 0U);
  EXPECT_FALSE(parse_host_port("db:", why));
  EXPECT_FALSE(parse_host_port("db:postgres", why));
  EXPECT_FALSE(parse_host_port("db:70000", why));
  EXPECT_FALSE(parse_host_port("::1:5432", why));
  EXPECT_FALSE(parse_host_port("tcp://db:5432", why));
  EXPECT_FALSE(parse_host_port("db:5432/sctp", why));
}

TEST(DoctorChecks, PortHeldByThisProcessIsNamed) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof sa;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), 0);
  const auto port = ntohs(sa.sin_port);

  traefik_config cfg;
  cfg.have_static = true;
  entrypoint e;
  e.name = "pg";
  e.address = ":" + std::to_string(port);
  e.address_loc = {"traefik.yml", 3, 0};
  cfg.entrypoints.push_back(e);
  const auto ls = proxy::read_listening_sockets();
  const auto it = std::find_if(ls.begin(), ls.end(), [&](const listener& l) {
    return l.port == port && l.ip == "127.0.0.1";
  });
  ASSERT_NE(it, ls.end());
  EXPECT_EQ(it->pid, ::getpid());
  auto fs = check_listeners(cfg, ls);
  ::close(fd);
  ASSERT_EQ(fs.size(), 1U);
  EXPECT_EQ(fs[0].code, "port_in_use");
  EXPECT_EQ(fs[0].loc.line, 3);
  EXPECT_NE(fs[0].message.find("pid " + std::to_string(::getpid())), std::string::npos)
      << fs[0].message;

  // The same listener owned by traefik is Traefik itself: not a conflict.
  auto mine = *it;
  mine.comm = "traefik";
  EXPECT_TRUE(check_listeners(cfg, {mine}).empty());
}

TEST(DoctorReport, ExitCodesAndOrdering) {
  std::vector<finding> fs;
  EXPECT_EQ(exit_code_for(fs), 0);
  fs.push_back({severity::info, "i", {}, "", "", "", "note", ""});
  EXPECT_EQ(exit_code_for(fs), 0);
  fs.push_back({severity::warning, "w", {}, "ep", "r@file", "", "warn", "fix w"});
  EXPECT_EQ(exit_code_for(fs), 1);
  fs.push_back({severity::error, "e", {"f.yml", 4, 2}, "ep", "r@file", "", "err", "fix e"});
  EXPECT_EQ(exit_code_for(fs), 2);
  sort_findings(fs);
  EXPECT_EQ(codes(fs), (std::vector<std::string>{"e", "w", "i"}));
  const auto text = render_text({}, fs);
  EXPECT_LT(text.find("[e]"), text.find("[w]"));
  EXPECT_NE(text.find("f.yml:4:2"), std::string::npos);
  const auto j = render_json({}, fs);
  EXPECT_EQ(j["errors"], 1);
  EXPECT_EQ(j["findings"][0]["line"], 4);
  EXPECT_EQ(j["exit_code"], 2);
}

}  // namespace
}  // namespace linesman::tools::doctor
