// `linesman doctor --kubernetes`: kubectl's List and `---` streams read into the doctor's model,
// each finding with its code, object (namespace/name) and line; bad input rejected with file:line.
#include "tests/unit/test_data.hpp"
#include "tools/doctor/checks.hpp"
#include "tools/doctor/config.hpp"
#include "tools/doctor/kubernetes.hpp"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include <gtest/gtest.h>

namespace linesman::tools::doctor {
namespace {

using linesman::test::kDoctorData;
const std::string kStatic = kDoctorData + "k8s_static/traefik.yml";

// run: the static fixture plus one Kubernetes fixture, checked as the CLI does.
std::vector<finding> run(const std::string& case_dir) {
  load_options opts;
  opts.static_file = kStatic;
  opts.kubernetes_files = {kDoctorData + case_dir + "/cluster.yaml"};
  const auto cfg = load_config(opts);
  return check_config(cfg, rule_syntax::v3);
}

using triple = std::tuple<std::string, std::string, int>;  // code, router, line

std::vector<triple> triples(const std::vector<finding>& fs) {
  std::vector<triple> out;
  for (const auto& f : fs) {
    if (f.level != severity::info) {
      out.emplace_back(f.code, f.router, f.loc.line);
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string read_error(const std::string& text) {
  traefik_config cfg;
  try {
    read_kubernetes_text(text, "in.yaml", cfg);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "no error";
}

TEST(DoctorKubernetes, CleanListWithBothApiGroupsHasNoFindings) {  // and no notes
  load_options opts;
  opts.static_file = kStatic;
  opts.kubernetes_files = {kDoctorData + "k8s_clean/cluster.yaml"};
  const auto cfg = load_config(opts);
  ASSERT_EQ(cfg.tcp_routers.size(), 3u);
  EXPECT_EQ(cfg.tcp_routers[0].name, "db/postgres");
  EXPECT_EQ(cfg.tcp_routers[0].provider, "kubernetescrd");
  EXPECT_TRUE(cfg.tcp_routers[0].tls.passthrough);
  EXPECT_EQ(cfg.tcp_routers[1].name, "apps/mqtt");  // traefik.containo.us/v1alpha1
  EXPECT_EQ(cfg.tcp_routers[1].rule_loc.line, 34);  // `- match: HostSNI(`*`)`
  EXPECT_EQ(cfg.kubernetes.services.size(), 3u);
  EXPECT_EQ(cfg.kubernetes.tls_options, std::vector<std::string>{"apps/modern"});
  EXPECT_EQ(cfg.kubernetes.servers_transports, std::vector<std::string>{"apps/vault-backend"});
  EXPECT_EQ(cfg.kubernetes.middlewares, std::vector<std::string>{"apps/lan-only"});
  const auto fs = check_config(cfg, rule_syntax::v3);
  EXPECT_TRUE(fs.empty()) << fs.front().code << " " << fs.front().message;
}

TEST(DoctorKubernetes, EntrypointMissingPointsAtTheObjectAndItsEntryPoints) {
  const auto fs = run("k8s_f1_entrypoint");
  EXPECT_EQ(triples(fs), (std::vector<triple>{
                             {"entrypoint_missing", "apps/vault@kubernetescrd", 25},
                             {"entrypoint_missing", "db/postgres@kubernetescrd", 12},
                         }));
  const auto it = std::find_if(fs.begin(), fs.end(), [](const finding& f) {
    return f.router == "apps/vault@kubernetescrd";
  });
  ASSERT_NE(it, fs.end());
  EXPECT_NE(it->fix.find("case-sensitive: write websecure"), std::string::npos) << it->fix;
}

TEST(DoctorKubernetes, HostMatcherOnATcpRoute) {
  const auto fs = run("k8s_f2_host");
  EXPECT_EQ(triples(fs),
            (std::vector<triple>{{"rule_http_matcher", "db/postgres@kubernetescrd", 14}}));
  EXPECT_EQ(fs.front().loc.col, 14);  // the column of Host inside `- match: Host(...)`
  EXPECT_EQ(fs.front().entrypoint, "postgres");
}

TEST(DoctorKubernetes, HostSniWithoutTlsButCatchAllIsFine) {
  EXPECT_EQ(
      triples(run("k8s_f2_hostsni")),
      (std::vector<triple>{{"hostsni_without_tls", "apps/mqtt.routes[0]@kubernetescrd", 15}}));
}

TEST(DoctorKubernetes, ServicePortMissingOrNotOnTheService) {
  const auto fs = run("k8s_f3_ports");
  EXPECT_EQ(triples(fs), (std::vector<triple>{
                             {"service_port_missing", "db/postgres@kubernetescrd", 18},
                             {"service_port_not_found", "db/postgres@kubernetescrd", 20},
                             {"service_port_not_found", "db/postgres@kubernetescrd", 22},
                             {"service_port_not_found", "db/postgres@kubernetescrd", 24},
                         }));
  for (const auto& f : fs) {
    EXPECT_EQ(f.service, "db/postgres");
    if (f.code == "service_port_not_found") {
      EXPECT_NE(f.message.find("only: postgres (5432)"), std::string::npos) << f.message;
      if (f.loc.line == 24) {
        EXPECT_NE(f.message.find("uses port name 5432 of"), std::string::npos) << f.message;
      }
    }
  }
}

TEST(DoctorKubernetes, PassthroughWithCertResolver) {
  const auto fs = run("k8s_f4_passthrough");
  EXPECT_EQ(triples(fs),
            (std::vector<triple>{{"passthrough_tls_ignored", "apps/vault@kubernetescrd", 21}}));
  EXPECT_EQ(fs.front().level, severity::warning);
}

TEST(DoctorKubernetes, MissingTlsOptionTransportAndService) {
  const auto fs = run("k8s_refs");
  EXPECT_EQ(triples(fs), (std::vector<triple>{
                             {"serverstransport_not_found", "apps/vault@kubernetescrd", 20},
                             {"service_not_found", "apps/postgres@kubernetescrd", 36},
                             {"tlsoption_not_found", "apps/vault@kubernetescrd", 24},
                         }));
  for (const auto& f : fs) {
    if (f.code == "tlsoption_not_found") {
      EXPECT_NE(f.message.find("TLSOption apps/modern"), std::string::npos) << f.message;
    }
    if (f.code == "service_not_found") {
      EXPECT_NE(f.fix.find("set namespace: db"), std::string::npos) << f.fix;
    }
  }
}

TEST(DoctorKubernetes, StreamOfDocumentsCountsLinesFromTheTop) {
  const auto fs = run("k8s_stream");
  EXPECT_EQ(triples(fs), (std::vector<triple>{
                             {"entrypoint_missing", "git/gitea-ssh@kubernetescrd", 9},
                             {"service_port_not_found", "git/gitea-ssh@kubernetescrd", 15},
                             {"service_port_not_found", "git/gitea-tls@kubernetescrd", 29},
                         }));
}

TEST(DoctorKubernetes, WithoutStaticTheEntrypointsAreNamedAsUnchecked) {
  traefik_config cfg;
  read_kubernetes(kDoctorData + "k8s_f1_entrypoint/cluster.yaml", cfg);
  const auto fs = check_config(cfg, rule_syntax::v3);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].code, "static_missing");
  EXPECT_EQ(fs[0].level, severity::info);
  EXPECT_NE(fs[0].message.find("(the routers use: postgress, WebSecure)"), std::string::npos)
      << fs[0].message;
}

TEST(DoctorKubernetes, CrossNamespaceReferenceNeedsAllowCrossNamespace) {
  const std::string yaml = R"(apiVersion: traefik.io/v1alpha1
kind: IngressRouteTCP
metadata: {name: r, namespace: a}
spec:
  routes:
  - match: HostSNI(`*`)
    services:
    - name: s
      namespace: b
      port: 1
---
apiVersion: v1
kind: Service
metadata: {name: s, namespace: b}
spec: {ports: [{port: 1}]}
)";
  traefik_config cfg;
  std::vector<std::string> unused;
  read_static(parse_yaml_text("entryPoints: {web: {address: ':80'}}", "s.yml"), "s.yml", cfg,
              unused);
  read_kubernetes_text(yaml, "in.yaml", cfg);
  auto fs = check_config(cfg, rule_syntax::v3);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].code, "cross_namespace_disallowed");
  EXPECT_EQ(fs[0].loc.line, 8);
  cfg.k8s_allow_cross_namespace = true;
  EXPECT_TRUE(check_config(cfg, rule_syntax::v3).empty());
}

TEST(DoctorKubernetes, UnknownApiVersionIsAWarningNotSilence) {
  traefik_config cfg;
  read_kubernetes_text(
      "apiVersion: traefik.io/v1beta9\nkind: IngressRouteTCP\nmetadata: {name: r}\n", "in.yaml",
      cfg);
  EXPECT_TRUE(cfg.tcp_routers.empty());
  const auto fs = check_kubernetes(cfg);
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].code, "crd_api_version_unknown");
  EXPECT_EQ(fs[0].loc.line, 1);
}

TEST(DoctorKubernetes, BadInputNamesFileAndLine) {
  EXPECT_NE(read_error("items: [a, b\n").find("in.yaml:"), std::string::npos);
  EXPECT_NE(read_error("items: [a, b\n").find("YAML syntax error"), std::string::npos);
  EXPECT_EQ(read_error(""),
            "in.yaml: no YAML document; expected the output of kubectl get "
            "ingressroutetcp,...,service -A -o yaml");
  EXPECT_EQ(read_error("just text\n"),
            "in.yaml:1: expected a Kubernetes object (a map with apiVersion and kind), found a "
            "scalar");
  EXPECT_EQ(read_error("apiVersion: v1\nkind: List\nitems: 3\n"),
            "in.yaml:3: List: items must be a list, found a scalar");
  EXPECT_EQ(read_error("apiVersion: v1\nkind: List\nitems:\n- 7\n"),
            "in.yaml:4: expected a Kubernetes object (a map with apiVersion and kind), found a "
            "scalar");
  EXPECT_EQ(read_error("apiVersion: v1\nitems: []\n"),
            "in.yaml:1: object without kind (expected kubectl get ... -o yaml output)");
  const std::string irt = "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\n";
  EXPECT_EQ(read_error(irt + "metadata: {namespace: x}\nspec: {routes: []}\n"),
            "in.yaml:3: IngressRouteTCP without metadata.name");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\n"),
            "in.yaml:1: IngressRouteTCP default/r without spec");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\nspec: {entryPoints: []}\n"),
            "in.yaml:4: IngressRouteTCP default/r without spec.routes");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\nspec:\n  routes: {match: x}\n"),
            "in.yaml:5: IngressRouteTCP default/r spec: routes must be a list, found a map");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\nspec:\n  routes:\n  - match: [a]\n"),
            "in.yaml:6: IngressRouteTCP default/r spec.routes[0]: match must be a string, found "
            "a list");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\nspec:\n  routes:\n  - services:\n"
                             "    - {name: s, port: {a: 1}}\n"),
            "in.yaml:7: IngressRouteTCP default/r spec.routes[0].services[0]: port must be a "
            "string, found a map");
  EXPECT_EQ(read_error(irt + "metadata: {name: r}\nspec:\n  tls: true\n  routes: []\n"),
            "in.yaml:5: IngressRouteTCP default/r: spec.tls must be a map, found a scalar");
  EXPECT_EQ(read_error("apiVersion: v1\nkind: List\nitems:\n- kind: List\n  items: []\n"),
            "in.yaml:4: a List inside a List");
}

TEST(DoctorKubernetes, HugeFilesAreRefusedNamingTheFile) {
  try {
    (void)read_input_file(kDoctorData + "k8s_clean/cluster.yaml", 100);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("k8s_clean/cluster.yaml: "), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("more than the 100"), std::string::npos);
  }
  // Nested aliases expand to more nodes than any configuration has: an error, not a hang.
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n";
  char prev = 'a';
  for (char c = 'b'; c <= 'h'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [";
    for (int i = 0; i < 10; ++i) {
      bomb += std::string(i ? ", " : "") + "*" + prev;
    }
    bomb += "]\n";
    prev = c;
  }
  EXPECT_NE(read_error(bomb).find("YAML nodes (aliases expanded)"), std::string::npos);
}

}  // namespace
}  // namespace linesman::tools::doctor
