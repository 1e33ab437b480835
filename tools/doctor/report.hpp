// doctor/report: how `linesman doctor` prints its findings (readable text grouped by entrypoint
// and router, errors first; or one JSON document) and the exit code they mean.
#pragma once

#include "tools/doctor/checks.hpp"

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools::doctor {

struct report_inputs {
  std::vector<std::string> static_files;
  std::vector<std::string> dynamic_files;
  std::vector<std::string> docker_files;
  std::string api_url;  // "" = not asked
  bool probed = false;
  std::vector<std::string> kubernetes_files;
};

// attribute_findings: a service finding without an entrypoint is filed under the first router
// that uses the service, so the report reads "entrypoint -> router -> what is wrong".
void attribute_findings(const traefik_config& cfg, std::vector<finding>& findings);

// sort_findings: errors, then warnings, then infos; stable otherwise (file order).
void sort_findings(std::vector<finding>& findings);

std::string render_text(const report_inputs& in, const std::vector<finding>& findings);
nlohmann::json render_json(const report_inputs& in, const std::vector<finding>& findings);

// exit_code_for: 0 clean (infos allowed), 1 warnings only, 2 any error.
int exit_code_for(const std::vector<finding>& findings);

}  // namespace linesman::tools::doctor
