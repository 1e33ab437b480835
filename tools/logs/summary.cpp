#include "tools/logs/summary.hpp"

#include "tools/text.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>
#include <utility>

#include <fmt/format.h>

namespace linesman::tools {
namespace {

constexpr std::array<std::string_view, 5> kPhases = {"inspect", "route", "connect", "first_reply",
                                                     "stream"};
constexpr std::array<std::string_view, kFunnelStages> kStageNames = {
    "accepted", "inspected", "routed", "connected", "first_reply", "stream"};

// phase_index: taxonomy order of a phase; unknown phases sort after the known ones.
std::size_t phase_index(std::string_view phase) {
  for (std::size_t i = 0; i < kPhases.size(); ++i) {
    if (kPhases[i] == phase) {
      return i;
    }
  }
  return kPhases.size();
}

// group_builder: accumulates one group while records stream by.
struct group_builder {
  group_summary out;
  std::map<std::pair<std::string, std::string>, std::size_t> reason_slot;  // -> index in reasons
  std::vector<double> connect;
  std::vector<double> first_reply;

  void add(const access_record& r) {
    ++out.connections;
    const auto stage = static_cast<std::size_t>(furthest_stage(r));
    for (std::size_t i = 0; i <= stage; ++i) {
      ++out.reached.at(i);
    }
    auto it = std::find_if(out.stopped.begin(), out.stopped.end(),
                           [&](const auto& p) { return p.first == r.phase; });
    if (it == out.stopped.end()) {
      out.stopped.emplace_back(r.phase, 1);
    } else {
      ++it->second;
    }
    auto key = std::make_pair(r.phase, r.reason);
    auto slot = reason_slot.find(key);
    if (slot == reason_slot.end()) {
      reason_slot.emplace(key, out.reasons.size());
      out.reasons.push_back(reason_count{r.phase, r.reason, 1, 0, r.hint, r.id,
                                         r.file + ":" + std::to_string(r.line)});
    } else {
      ++out.reasons.at(slot->second).count;
    }
    if (r.upstream_connected_ms) {
      connect.push_back(*r.upstream_connected_ms);
      if (r.upstream_first_byte_ms) {
        first_reply.push_back(*r.upstream_first_byte_ms - *r.upstream_connected_ms);
      }
    }
  }

  group_summary finish() {
    // Known phases always listed (zeros too) so tables line up; unknown ones after, as seen.
    std::vector<std::pair<std::string, std::size_t>> stopped;
    for (auto phase : kPhases) {
      auto it = std::find_if(out.stopped.begin(), out.stopped.end(),
                             [&](const auto& p) { return p.first == phase; });
      stopped.emplace_back(std::string(phase), it == out.stopped.end() ? 0 : it->second);
    }
    for (const auto& p : out.stopped) {
      if (phase_index(p.first) == kPhases.size()) {
        stopped.push_back(p);
      }
    }
    out.stopped = std::move(stopped);
    for (auto& rc : out.reasons) {
      rc.share = out.connections == 0
                     ? 0.0
                     : static_cast<double>(rc.count) / static_cast<double>(out.connections);
    }
    // stable: equal counts keep file order of first appearance after phase and name.
    std::stable_sort(out.reasons.begin(), out.reasons.end(),
                     [](const reason_count& a, const reason_count& b) {
                       return std::make_tuple(b.count, phase_index(a.phase), a.reason) <
                              std::make_tuple(a.count, phase_index(b.phase), b.reason);
                     });
    out.connect_ms = compute_percentiles(std::move(connect));
    out.first_reply_ms = compute_percentiles(std::move(first_reply));
    return std::move(out);
  }
};

std::string ms(double v) { return fmt::format("{:.2f}", v); }

nlohmann::json percentiles_json(const percentiles& p) {
  nlohmann::json j;
  j["n"] = p.n;
  if (p.n == 0) {
    j["p50"] = j["p90"] = j["p99"] = j["max"] = nullptr;
  } else {
    j["p50"] = p.p50;
    j["p90"] = p.p90;
    j["p99"] = p.p99;
    j["max"] = p.max;
  }
  return j;
}

nlohmann::json group_json(const group_summary& g, bool with_key) {
  nlohmann::json j = nlohmann::json::object();
  if (with_key) {
    j["listener"] = g.listener;
    j["sni"] = g.sni ? nlohmann::json(*g.sni) : nlohmann::json(nullptr);
  }
  j["connections"] = g.connections;
  nlohmann::json funnel = nlohmann::json::object();
  for (std::size_t i = 0; i < kFunnelStages; ++i) {
    funnel[std::string(kStageNames.at(i))] = g.reached.at(i);
  }
  j["funnel"] = funnel;
  nlohmann::json stopped = nlohmann::json::object();
  for (const auto& [phase, count] : g.stopped) {
    stopped[phase] = count;
  }
  j["stopped"] = stopped;
  nlohmann::json reasons = nlohmann::json::array();
  for (const auto& r : g.reasons) {
    reasons.push_back({{"phase", r.phase},
                       {"reason", r.reason},
                       {"count", r.count},
                       {"share", r.share},
                       {"example_hint", r.example_hint},
                       {"example_id", r.example_id},
                       {"example_at", r.example_at}});
  }
  j["stop_reasons"] = reasons;
  j["connect_ms"] = percentiles_json(g.connect_ms);
  j["first_reply_ms"] = percentiles_json(g.first_reply_ms);
  return j;
}

std::string group_label(const group_summary& g, std::size_t width) {
  return fit(g.listener + " / " + sni_label(g.sni), width);
}

}  // namespace

percentiles compute_percentiles(std::vector<double> values) {
  percentiles p;
  p.n = values.size();
  if (values.empty()) {
    return p;
  }
  std::sort(values.begin(), values.end());
  // nearest rank: rank = ceil(q * n), 1-based; integer arithmetic so 0.9 * 10 is exactly 9.
  auto at = [&](std::size_t percent) {
    std::size_t rank = (percent * values.size() + 99) / 100;
    rank = std::clamp<std::size_t>(rank, 1, values.size());
    return values.at(rank - 1);
  };
  p.p50 = at(50);
  p.p90 = at(90);
  p.p99 = at(99);
  p.max = values.back();
  return p;
}

std::string_view to_string(funnel_stage s) { return kStageNames.at(static_cast<std::size_t>(s)); }

funnel_stage furthest_stage(const access_record& r) {
  const std::size_t phase = phase_index(r.phase);
  if (phase == 4) {
    return funnel_stage::stream;
  }
  if (r.upstream_first_byte_ms || r.bytes_from_upstream > 0) {
    return funnel_stage::first_reply;
  }
  if (r.upstream_connected_ms || phase == 3) {
    return funnel_stage::connected;
  }
  if (phase == 2 || r.route) {
    return funnel_stage::routed;
  }
  if (r.client_first_byte_ms || r.bytes_from_client > 0 || phase == 1) {
    return funnel_stage::inspected;
  }
  return funnel_stage::accepted;
}

std::string sni_label(const std::optional<std::string>& sni) { return sni ? *sni : "(no SNI)"; }

pq_split pq_split_of(const std::vector<access_record>& records) {
  pq_split out;
  for (const auto& r : records) {
    if (!r.pq_key_share) {
      continue;
    }
    pq_side& side = *r.pq_key_share ? out.pq : out.classic;
    ++side.connections;
    const bool default_cert =
        std::find(r.warnings.begin(), r.warnings.end(), "default_certificate") != r.warnings.end();
    if (r.outcome != "ok" || default_cert) {
      ++side.failed;
    }
  }
  const auto frac = [](const pq_side& s) {
    return fmt::format("{} of {}", s.failed, s.connections);
  };
  if (out.pq.failed > 0 && out.classic.failed == 0 && out.classic.connections > 0) {
    out.one_sided = "Failures fall only on connections with a post-quantum key share (" +
                    frac(out.pq) + " failed, " + frac(out.classic) +
                    " without): a router in front that reads only the first segment of a ~2 KB "
                    "hello is the likely cause.";
  } else if (out.classic.failed > 0 && out.pq.failed == 0 && out.pq.connections > 0) {
    out.one_sided = "Failures fall only on connections without a post-quantum key share (" +
                    frac(out.classic) + " failed, " + frac(out.pq) + " with one).";
  }
  return out;
}

summary summarize(const log_contents& logs) {
  summary s;
  s.files = logs.files;
  s.records = logs.records.size();
  s.interim_records = logs.open_records.size();
  s.bad_lines = logs.bad_lines.size();

  // Key (listener, has SNI, SNI) keeps "(no SNI)" apart from a real SNI spelled that way.
  std::map<std::tuple<std::string, bool, std::string>, group_builder> groups;
  group_builder total;
  std::set<std::pair<std::string, std::string>> final_ids;
  for (const auto& r : logs.records) {
    auto& g = groups[{r.listener, r.sni.has_value(), r.sni.value_or("")}];
    if (g.out.connections == 0) {
      g.out.listener = r.listener;
      g.out.sni = r.sni;
    }
    g.add(r);
    total.add(r);
    final_ids.emplace(r.file, r.id);
  }
  for (auto& [key, g] : groups) {
    s.groups.push_back(g.finish());
  }
  std::stable_sort(s.groups.begin(), s.groups.end(),
                   [](const group_summary& a, const group_summary& b) {
                     if (a.listener != b.listener) {
                       return a.listener < b.listener;
                     }
                     if (a.connections != b.connections) {
                       return a.connections > b.connections;
                     }
                     // Ties: a named SNI before "(no SNI)", then by name.
                     return std::make_pair(!a.sni.has_value(), a.sni.value_or("")) <
                            std::make_pair(!b.sni.has_value(), b.sni.value_or(""));
                   });
  s.total = total.finish();
  std::map<std::string, std::size_t> warning_counts;
  for (const auto& r : logs.records) {
    for (const auto& w : r.warnings) {
      ++warning_counts[w];
    }
  }
  s.warnings.assign(warning_counts.begin(), warning_counts.end());
  std::stable_sort(s.warnings.begin(), s.warnings.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  s.pq = pq_split_of(logs.records);

  // The latest interim record of each connection that never got a final record.
  std::map<std::pair<std::string, std::string>, std::size_t> latest;
  for (std::size_t i = 0; i < logs.open_records.size(); ++i) {
    const auto& r = logs.open_records[i];
    if (!final_ids.contains({r.file, r.id})) {
      latest[{r.file, r.id}] = i;
    }
  }
  std::vector<std::size_t> order;
  for (const auto& [key, i] : latest) {
    order.push_back(i);
  }
  std::sort(order.begin(), order.end());
  for (auto i : order) {
    const auto& r = logs.open_records[i];
    s.open.push_back(still_open{r.id, r.listener, r.sni, r.phase, r.duration_ms,
                                r.file + ":" + std::to_string(r.line)});
  }
  return s;
}

nlohmann::json to_json(const summary& s) {
  nlohmann::json j;
  j["files"] = s.files;
  j["records"] = s.records;
  j["interim_records"] = s.interim_records;
  j["bad_lines"] = s.bad_lines;
  j["percentile_method"] = "nearest-rank";
  j["connect_ms_measured"] = "accept -> timing_ms.upstream_connected";
  j["first_reply_ms_measured"] = "timing_ms.upstream_connected -> timing_ms.upstream_first_byte";
  j["funnel_stages"] = kStageNames;
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : s.groups) {
    groups.push_back(group_json(g, true));
  }
  j["groups"] = groups;
  j["total"] = group_json(s.total, false);
  nlohmann::json open = nlohmann::json::array();
  for (const auto& o : s.open) {
    open.push_back({{"id", o.id},
                    {"listener", o.listener},
                    {"sni", o.sni ? nlohmann::json(*o.sni) : nlohmann::json(nullptr)},
                    {"phase", o.phase},
                    {"age_ms", o.age_ms},
                    {"at", o.at}});
  }
  j["still_open"] = open;
  nlohmann::json warnings = nlohmann::json::object();
  for (const auto& [name, count] : s.warnings) {
    warnings[name] = count;
  }
  j["warnings"] = warnings;
  j["pq_key_share"] = {
      {"with", {{"connections", s.pq.pq.connections}, {"failed", s.pq.pq.failed}}},
      {"without", {{"connections", s.pq.classic.connections}, {"failed", s.pq.classic.failed}}},
      {"one_sided",
       s.pq.one_sided.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.pq.one_sided)},
  };
  return j;
}

std::string render_text(const summary& s, std::size_t top) {
  std::string out;
  out += fmt::format("linesman summary: {} record{} from {} file{}", s.records,
                     s.records == 1 ? "" : "s", s.files.size(), s.files.size() == 1 ? "" : "s");
  std::vector<std::string> notes;
  if (s.bad_lines > 0) {
    notes.push_back(fmt::format("{} bad line{} skipped", s.bad_lines, s.bad_lines == 1 ? "" : "s"));
  }
  if (s.interim_records > 0) {
    notes.push_back(fmt::format("{} interim record{} not counted", s.interim_records,
                                s.interim_records == 1 ? "" : "s"));
  }
  if (!notes.empty()) {
    out += " (" + notes.front();
    for (std::size_t i = 1; i < notes.size(); ++i) {
      out += ", " + notes[i];
    }
    out += ")";
  }
  out += "\n";
  if (s.records == 0) {
    out += "no final records to summarize\n";
  }

  // listener 14 + SNI 24 + 6 columns of 10 = 99 columns.
  const bool with_total = s.groups.size() > 1;
  if (s.records > 0) {
    out += "\nFunnel: connections that reached each stage (or went further)\n";
    out += fmt::format("{:<14} {:<24}", "listener", "SNI");
    for (auto name : {"accepted", "inspected", "routed", "connected", "1st reply", "stream"}) {
      out += fmt::format("{:>10}", name);
    }
    out += "\n";
    auto funnel_row = [&](std::string_view listener, std::string_view sni, const group_summary& g) {
      out += fmt::format("{:<14} {:<24}", fit(listener, 14), fit(sni, 24));
      for (auto n : g.reached) {
        out += fmt::format("{:>10}", n);
      }
      out += "\n";
    };
    for (const auto& g : s.groups) {
      funnel_row(g.listener, sni_label(g.sni), g);
    }
    if (with_total) {
      funnel_row("(all)", "", s.total);
    }

    out += "\nWhere they stopped (stop.phase)\n";
    out += fmt::format("{:<14} {:<24}", "listener", "SNI");
    std::size_t columns = 0;
    for (const auto& [phase, count] : s.total.stopped) {
      if (columns == 6) {
        break;  // 100 columns hold six; the rest are in the reasons list and --json
      }
      out += fmt::format("{:>10}", fit(phase == "first_reply" ? "1st reply" : phase, 9));
      ++columns;
    }
    out += "\n";
    auto stopped_row = [&](std::string_view listener, std::string_view sni,
                           const group_summary& g) {
      out += fmt::format("{:<14} {:<24}", fit(listener, 14), fit(sni, 24));
      for (std::size_t i = 0; i < columns; ++i) {
        const auto& phase = s.total.stopped.at(i).first;
        auto it = std::find_if(g.stopped.begin(), g.stopped.end(),
                               [&](const auto& p) { return p.first == phase; });
        out += fmt::format("{:>10}", it == g.stopped.end() ? 0 : it->second);
      }
      out += "\n";
    };
    for (const auto& g : s.groups) {
      stopped_row(g.listener, sni_label(g.sni), g);
    }
    if (with_total) {
      stopped_row("(all)", "", s.total);
    }

    const auto& reasons = s.total.reasons;
    out += fmt::format("\nTop stop reasons ({} of {} shown)\n", std::min(top, reasons.size()),
                       reasons.size());
    out += fmt::format("{:>3}  {:<44} {:>7} {:>7}  {}\n", "#", "phase/reason", "count", "share",
                       "example id (file:line)");
    for (std::size_t i = 0; i < reasons.size() && i < top; ++i) {
      const auto& r = reasons[i];
      // The text names the file without its directory; --json has the full path.
      const auto colon = r.example_at.rfind(':');
      const std::string where =
          std::filesystem::path(r.example_at.substr(0, colon)).filename().string() +
          r.example_at.substr(colon);
      std::string example = r.example_id + " (" + where + ")";
      out += fmt::format("{:>3}  {:<44} {:>7} {:>6.1f}%  {}\n", i + 1,
                         fit(r.phase + "/" + r.reason, 44), r.count, r.share * 100.0,
                         fit(example, 100 - 73));
      if (!r.example_hint.empty()) {
        out += wrap("hint: " + r.example_hint, "     ", kReportWidth);
      }
    }

    if (!s.warnings.empty()) {
      out += "\nWarnings (records may end ok and still carry them)\n";
      for (const auto& [name, count] : s.warnings) {
        out += fmt::format("     {:<44} {:>7} {:>6.1f}%\n", fit(name, 44), count,
                           100.0 * static_cast<double>(count) / static_cast<double>(s.records));
      }
    }
    if (s.pq.pq.connections + s.pq.classic.connections > 0) {
      out +=
          "\nPost-quantum key share (complete ClientHellos; failed: outcome not ok or a default "
          "certificate)\n";
      out += fmt::format("     {:<44} {:>7} {:>7}\n", "", "conns", "failed");
      out += fmt::format("     {:<44} {:>7} {:>7}\n", "with (X25519MLKEM768, ...)",
                         s.pq.pq.connections, s.pq.pq.failed);
      out += fmt::format("     {:<44} {:>7} {:>7}\n", "without (classic groups)",
                         s.pq.classic.connections, s.pq.classic.failed);
      if (!s.pq.one_sided.empty()) {
        out += wrap(s.pq.one_sided, "     ", kReportWidth);
      }
    }

    out += "\nTimings in ms: nearest-rank percentiles over the records that have the value\n";
    out += "(null timings are left out; n says how many records were used)\n";
    out +=
        fmt::format("{:<44}{:>8}{:>12}{:>12}{:>12}{:>12}\n", "", "n", "p50", "p90", "p99", "max");
    auto timing_row = [&](std::string_view label, const percentiles& p) {
      if (p.n == 0) {
        out += fmt::format("{:<44}{:>8}{:>12}{:>12}{:>12}{:>12}\n", fit(label, 43), 0, "-", "-",
                           "-", "-");
        return;
      }
      out += fmt::format("{:<44}{:>8}{:>12}{:>12}{:>12}{:>12}\n", fit(label, 43), p.n, ms(p.p50),
                         ms(p.p90), ms(p.p99), ms(p.max));
    };
    out += "connect (accept -> upstream_connected)\n";
    timing_row("  (all)", s.total.connect_ms);
    if (with_total) {
      for (const auto& g : s.groups) {
        timing_row("  " + group_label(g, 41), g.connect_ms);
      }
    }
    out += "first reply (upstream_connected -> upstream_first_byte)\n";
    timing_row("  (all)", s.total.first_reply_ms);
    if (with_total) {
      for (const auto& g : s.groups) {
        timing_row("  " + group_label(g, 41), g.first_reply_ms);
      }
    }
  }

  if (!s.open.empty()) {
    out += fmt::format("\nStill open when the log ended (interim records, no final record): {}\n",
                       s.open.size());
    for (const auto& o : s.open) {
      out += fit(fmt::format("  {}  {} / {}  waiting in {} for {} ms  ({})", o.id, o.listener,
                             sni_label(o.sni), o.phase.empty() ? "?" : o.phase, ms(o.age_ms), o.at),
                 kReportWidth) +
             "\n";
    }
  }
  return out;
}

}  // namespace linesman::tools
