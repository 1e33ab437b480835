#include "tools/doctor/report.hpp"

#include <algorithm>
#include <map>

namespace linesman::tools::doctor {

namespace {

int rank(severity s) { return static_cast<int>(s); }

std::string plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

std::string loc_text(const source_loc& l) {
  if (l.file.empty()) {
    return "-";
  }
  std::string s = l.str();
  if (l.line > 0 && l.col > 0) {
    s += ":" + std::to_string(l.col);
  }
  return s;
}

// wrap: indent continuation lines so long messages stay readable in a terminal.
std::string wrap(const std::string& text, std::size_t indent, std::size_t width = 100) {
  std::string out;
  std::size_t col = indent;
  std::size_t i = 0;
  while (i < text.size()) {
    auto sp = text.find(' ', i);
    if (sp == std::string::npos) {
      sp = text.size();
    }
    const auto word = text.substr(i, sp - i);
    if (col > indent && col + 1 + word.size() > width) {
      out += "\n" + std::string(indent, ' ');
      col = indent;
    } else if (col > indent) {
      out += " ";
      ++col;
    }
    out += word;
    col += word.size();
    i = sp + 1;
  }
  return out;
}

}  // namespace

void attribute_findings(const traefik_config& cfg, std::vector<finding>& findings) {
  for (auto& f : findings) {
    if (f.service.empty()) {
      continue;
    }
    for (const auto& r : cfg.tcp_routers) {
      bool foreign = false;
      const auto* s = find_service(cfg, r.service, r.provider, foreign);
      if (s == nullptr || qualified(s->name, s->provider) != f.service) {
        continue;
      }
      if (f.router.empty()) {
        f.router = qualified(r.name, r.provider);
      }
      if (f.entrypoint.empty()) {
        const auto eps = router_entrypoints(cfg, r.has_entry_points, r.entry_points);
        if (!eps.empty()) {
          f.entrypoint = eps.front();
        }
      }
      break;
    }
  }
}

void sort_findings(std::vector<finding>& findings) {
  std::stable_sort(findings.begin(), findings.end(), [](const finding& a, const finding& b) {
    return rank(a.level) < rank(b.level);
  });
}

int exit_code_for(const std::vector<finding>& findings) {
  int code = 0;
  for (const auto& f : findings) {
    if (f.level == severity::error) {
      return 2;
    }
    if (f.level == severity::warning) {
      code = 1;
    }
  }
  return code;
}

std::string render_text(const report_inputs& in, const std::vector<finding>& findings) {
  std::size_t n[3] = {0, 0, 0};
  for (const auto& f : findings) {
    ++n[rank(f.level)];
  }
  std::string out = "linesman doctor: " + plural(n[0], "error") + ", " + plural(n[1], "warning") +
                    ", " + plural(n[2], "note") + "\n";
  auto list = [&](const char* what, const std::vector<std::string>& files) {
    for (const auto& f : files) {
      out += std::string("  read ") + what + ": " + f + "\n";
    }
  };
  list("static ", in.static_files);
  list("dynamic", in.dynamic_files);
  list("docker ", in.docker_files);
  list("k8s    ", in.kubernetes_files);
  if (!in.api_url.empty()) {
    out += "  asked  api    : " + in.api_url + "\n";
  }
  if (in.probed) {
    out += "  probed the service addresses\n";
  }
  if (findings.empty()) {
    out += "\nno problems found\n";
    return out;
  }

  // Groups keep first-appearance order after the severity sort, so the group holding the first
  // error comes first, and inside it the router holding it.
  std::vector<std::string> group_order;
  std::map<std::string, std::vector<std::string>> sub_order;
  std::map<std::pair<std::string, std::string>, std::vector<const finding*>> items;
  for (const auto& f : findings) {
    const std::string g = f.entrypoint;
    const std::string s = !f.router.empty()    ? "router " + f.router
                          : !f.service.empty() ? "service " + f.service
                                               : std::string{};
    if (std::find(group_order.begin(), group_order.end(), g) == group_order.end()) {
      group_order.push_back(g);
    }
    auto& subs = sub_order[g];
    if (std::find(subs.begin(), subs.end(), s) == subs.end()) {
      subs.push_back(s);
    }
    items[{g, s}].push_back(&f);
  }
  for (const auto& g : group_order) {
    out += "\n" + (g.empty() ? std::string("not tied to an entrypoint") : "entrypoint " + g) + "\n";
    for (const auto& s : sub_order[g]) {
      std::string ind = "  ";
      if (!s.empty()) {
        out += "  " + s + "\n";
        ind = "    ";
      }
      for (const auto* f : items[{g, s}]) {
        std::string head = std::string(severity_name(f->level));
        head.resize(8, ' ');
        out += ind + head + loc_text(f->loc) + "  [" + f->code + "]\n";
        out += ind + "        " + wrap(f->message, ind.size() + 8) + "\n";
        if (!f->fix.empty()) {
          out += ind + "        fix: " + wrap(f->fix, ind.size() + 13) + "\n";
        }
      }
    }
  }
  return out;
}

nlohmann::json render_json(const report_inputs& in, const std::vector<finding>& findings) {
  nlohmann::json j;
  std::size_t n[3] = {0, 0, 0};
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& f : findings) {
    ++n[rank(f.level)];
    nlohmann::json o{
        {"severity", std::string(severity_name(f.level))},
        {"code", f.code},
        {"file", f.loc.file.empty() ? nlohmann::json() : nlohmann::json(f.loc.file)},
        {"line", f.loc.line > 0 ? nlohmann::json(f.loc.line) : nlohmann::json()},
        {"column", f.loc.col > 0 ? nlohmann::json(f.loc.col) : nlohmann::json()},
        {"entrypoint", f.entrypoint.empty() ? nlohmann::json() : nlohmann::json(f.entrypoint)},
        {"router", f.router.empty() ? nlohmann::json() : nlohmann::json(f.router)},
        {"service", f.service.empty() ? nlohmann::json() : nlohmann::json(f.service)},
        {"message", f.message},
        {"fix", f.fix}};
    arr.push_back(std::move(o));
  }
  j["errors"] = n[0];
  j["warnings"] = n[1];
  j["notes"] = n[2];
  j["exit_code"] = exit_code_for(findings);
  j["inputs"] = {{"static", in.static_files},
                 {"dynamic", in.dynamic_files},
                 {"docker", in.docker_files},
                 {"kubernetes", in.kubernetes_files},
                 {"api", in.api_url.empty() ? nlohmann::json() : nlohmann::json(in.api_url)},
                 {"probe", in.probed}};
  j["findings"] = std::move(arr);
  return j;
}

}  // namespace linesman::tools::doctor
