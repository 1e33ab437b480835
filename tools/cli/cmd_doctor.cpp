// `linesman doctor`: read Traefik's configuration (and optionally its API and the backends) and
// report the mistakes that make TCP routes fail quietly, with file:line and a fix (docs/doctor.md).
#include "tools/cli/commands.hpp"
#include "tools/doctor/api.hpp"
#include "tools/doctor/checks.hpp"
#include "tools/doctor/config.hpp"
#include "tools/doctor/probe.hpp"
#include "tools/doctor/report.hpp"

#include <chrono>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

namespace linesman::tools {

namespace {

struct doctor_args {
  std::string static_file;
  std::vector<std::string> dynamic_paths;
  std::vector<std::string> docker_files;
  std::vector<std::string> kubernetes_files;
  std::string api_url;
  bool probe = false;
  bool json = false;
  bool no_ports = false;
  int timeout_ms = 2000;
  std::string rule_syntax = "v3";
};

int run_doctor(const doctor_args& a) {
  using namespace doctor;
  traefik_config cfg;
  try {
    cfg = load_config({a.static_file, a.dynamic_paths, a.docker_files, a.kubernetes_files});
  } catch (const std::exception& e) {
    std::cerr << "linesman doctor: " << e.what() << "\n";
    return 2;
  }
  const auto fallback = a.rule_syntax == "v2" ? rule_syntax::v2 : rule_syntax::v3;
  auto findings = check_config(cfg, fallback);
  if (const auto ports = entrypoint_ports(cfg); !a.no_ports && !ports.empty()) {
    auto more = check_listeners(cfg, proxy::read_listening_sockets("/proc", ports));
    findings.insert(findings.end(), more.begin(), more.end());
  }
  const std::chrono::milliseconds timeout(a.timeout_ms);
  if (a.probe) {
    auto more = run_probes(cfg, probe_options{timeout});
    findings.insert(findings.end(), more.begin(), more.end());
  }
  if (!a.api_url.empty()) {
    auto more = check_api(cfg, fetch_api(a.api_url, timeout), a.api_url);
    findings.insert(findings.end(), more.begin(), more.end());
  }
  attribute_findings(cfg, findings);
  sort_findings(findings);
  report_inputs in{cfg.static_files, cfg.dynamic_files, cfg.docker_files,
                   a.api_url,        a.probe,           cfg.kubernetes_files};
  if (a.json) {
    std::cout << render_json(in, findings).dump(2) << "\n";
  } else {
    std::cout << render_text(in, findings);
  }
  return exit_code_for(findings);
}

}  // namespace

void add_doctor_command(CLI::App& app) {
  auto args = std::make_shared<doctor_args>();
  auto* cmd = app.add_subcommand(
      "doctor",
      "Check Traefik's configuration (files, API, backends) for the mistakes that make TCP "
      "routes fail quietly. Exit 0 clean, 1 warnings, 2 errors or unreadable input");
  cmd->add_option("--static", args->static_file,
                  "Traefik static configuration (YAML or TOML); default: the usual places "
                  "(/etc/traefik/traefik.{yml,yaml,toml}, ~/.config, the working directory)");
  cmd->add_option("--dynamic", args->dynamic_paths,
                  "dynamic configuration file or directory (repeatable); default: the file "
                  "provider the static configuration names");
  cmd->add_option("--docker-inspect", args->docker_files,
                  "`docker inspect` output whose traefik.tcp.* labels to check (repeatable)");
  cmd->add_option("--kubernetes", args->kubernetes_files,
                  "kubectl get ingressroutetcp,middlewaretcp,tlsoption,serverstransporttcp,service "
                  "-A -o yaml output (a List or a --- stream) whose TCP routes to check "
                  "(repeatable)");
  cmd->add_option("--api", args->api_url, "Traefik API base URL, e.g. http://127.0.0.1:8080");
  cmd->add_flag("--probe", args->probe,
                "connect to each service address in the configuration: reachable? TLS or not?");
  cmd->add_option("--timeout", args->timeout_ms, "per-step timeout for --probe and --api, ms")
      ->check(CLI::Range(50, 60000));
  cmd->add_option("--rule-syntax", args->rule_syntax,
                  "rule syntax of routers without ruleSyntax (Traefik v3 default: v3)")
      ->check(CLI::IsMember({"v2", "v3"}));
  cmd->add_flag("--no-ports", args->no_ports,
                "do not look at this machine's listening sockets (config from another host)");
  cmd->add_flag("--json", args->json, "one JSON document instead of the readable report");
  cmd->callback([args] { exit_code() = run_doctor(*args); });
}

}  // namespace linesman::tools
