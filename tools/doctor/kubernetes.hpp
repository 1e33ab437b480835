// doctor/kubernetes: `linesman doctor --kubernetes FILE`. Reads the YAML kubectl prints for
//   kubectl get ingressroutetcp,middlewaretcp,tlsoption,serverstransporttcp,service -A -o yaml
// (a `kind: List`, or a `---` stream of objects, or both) into the model the file and label
// readers fill: each IngressRouteTCP route becomes a tcp_router named "namespace/name" (with
// ".routes[N]" when the object has several routes) of the provider "kubernetescrd", so
// check_config applies the same entrypoint, rule and TLS checks to it. What only Kubernetes has
// (Services and their named ports, references to TLSOption, ServersTransportTCP and MiddlewareTCP
// objects by namespace/name) lands in traefik_config::kubernetes and is checked by
// check_kubernetes. Both API groups are read: traefik.io/v1alpha1 and
// traefik.containo.us/v1alpha1.
#pragma once

#include "tools/doctor/checks.hpp"
#include "tools/doctor/config.hpp"

#include <string>
#include <vector>

namespace linesman::tools::doctor {

// read_kubernetes_text: read `text` (named `file` in messages and locations) into `out`. Throws
// std::runtime_error naming file:line when the text is not YAML, is not a Kubernetes object or
// List, or a field Traefik needs has the wrong type or is missing. Objects of other kinds are
// skipped.
void read_kubernetes_text(const std::string& text, const std::string& file, traefik_config& out);
// read_kubernetes: read_kubernetes_text on a file (at most 64 MiB). Throws naming the file.
void read_kubernetes(const std::string& path, traefik_config& out);

// check_kubernetes: the Kubernetes-only checks: a Service that is missing or lacks the referenced
// port (by number or name), a route service without a port, a route without services, a
// TLSOption, ServersTransportTCP or MiddlewareTCP referenced but absent, a cross-namespace
// reference Traefik refuses (allowCrossNamespace off), and Traefik objects of an unknown
// apiVersion. Empty when no Kubernetes input was read.
std::vector<finding> check_kubernetes(const traefik_config& cfg);

}  // namespace linesman::tools::doctor
