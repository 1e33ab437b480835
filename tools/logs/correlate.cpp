#include "tools/logs/correlate.hpp"

#include "tools/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <tuple>
#include <unordered_map>

#include <fmt/format.h>

namespace linesman::tools {
namespace {

struct candidate {
  std::int64_t distance_us;  // |B.ts - A.ts|
  std::size_t a;
  std::size_t b;

  bool operator<(const candidate& o) const {
    return std::tie(distance_us, a, b) < std::tie(o.distance_us, o.a, o.b);
  }
};

bool same_sni(const std::optional<std::string>& x, const std::optional<std::string>& y) {
  if (!x || !y) {
    return !x && !y;
  }
  return iequals(*x, *y);
}

// reached_upstream: A's record shows a TCP connection to Traefik was made.
bool reached_upstream(const access_record& r) {
  return r.upstream_connected_ms.has_value() || r.phase == "first_reply" || r.phase == "stream";
}

std::string a_only_hint(const access_record& r) {
  if (!reached_upstream(r)) {
    std::string hint = "never reached Traefik (stopped in " + r.phase + "/" + r.reason +
                       "), so no backend record was expected";
    if (!r.hint.empty()) {
      hint += ": " + r.hint;
    }
    return hint;
  }
  std::string hint(kNeverDialedHint);
  if (r.upstream_first_byte_ms && r.phase == "stream") {
    // Traefik (or whatever it sent the connection to) answered and the stream ran: the
    // backend side just is not behind B, or B's log does not cover this time.
    hint +=
        " (Traefik did answer and the stream ran: the route may lead to a backend that does "
        "not pass through B, or B's log does not cover this time)";
  }
  return hint;
}

std::string b_only_hint(const access_record& r) {
  std::string hint =
      "reached the backend side with no record in A: the connection came from a client or "
      "entrypoint that does not pass through A, or A's log does not cover this time";
  if (r.proxy_source) {
    hint += " (its PROXY source " + to_string(*r.proxy_source) + " matches no A client)";
  }
  return hint;
}

// near_miss: when an unpaired A with the same SNI ended shortly before `rb` started (within a
// minute past its window), says so: the window was probably too small for this path.
std::string near_miss(const std::vector<access_record>& a, const std::vector<bool>& a_used,
                      const std::vector<bool>& a_can_pair, const access_record& rb,
                      std::int64_t window_us) {
  constexpr std::int64_t kLookBackUs = 60 * 1000000LL;
  std::optional<std::size_t> best;
  std::int64_t best_gap = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a_used[i] || !a_can_pair[i] || !same_sni(a[i].sni, rb.sni) || a[i].ts_us > rb.ts_us) {
      continue;
    }
    const std::int64_t end =
        a[i].ts_us + std::max<std::int64_t>(std::llround(a[i].duration_ms * 1000.0), 0);
    const std::int64_t gap = rb.ts_us - end;  // > window_us, or it would have paired
    if (gap > window_us && gap <= window_us + kLookBackUs && (!best || gap < best_gap)) {
      best = i;
      best_gap = gap;
    }
  }
  if (!best) {
    return "";
  }
  return fmt::format(
      "; the unpaired A record {} with the same SNI ended {:.1f} ms before it started, outside "
      "the {:.0f} ms window: a wider --window would pair them",
      a[*best].id, static_cast<double>(best_gap) / 1000.0, static_cast<double>(window_us) / 1000.0);
}

void take_greedy(std::vector<candidate>& cands, pair_method how,
                 const std::vector<access_record>& a, const std::vector<access_record>& b,
                 std::vector<bool>& a_used, std::vector<bool>& b_used,
                 std::vector<record_pair>& out) {
  std::sort(cands.begin(), cands.end());
  for (const auto& c : cands) {
    if (a_used[c.a] || b_used[c.b]) {
      continue;
    }
    a_used[c.a] = true;
    b_used[c.b] = true;
    out.push_back(
        record_pair{c.a, c.b, how, static_cast<double>(b[c.b].ts_us - a[c.a].ts_us) / 1000.0});
  }
}

std::string sni_text(const std::optional<std::string>& sni) { return sni ? *sni : "(no SNI)"; }

nlohmann::json record_json(const access_record& r, const std::string& hint) {
  return {{"id", r.id},
          {"at", r.file + ":" + std::to_string(r.line)},
          {"ts", r.ts},
          {"listener", r.listener},
          {"client", r.client ? nlohmann::json(to_string(*r.client)) : nlohmann::json(nullptr)},
          {"sni", r.sni ? nlohmann::json(*r.sni) : nlohmann::json(nullptr)},
          {"stop", r.phase + "/" + r.reason},
          {"hint", hint}};
}

}  // namespace

std::string_view to_string(pair_method m) {
  return m == pair_method::proxy_source ? "proxy_source" : "time_sni";
}

correlation correlate(const std::vector<access_record>& a, const std::vector<access_record>& b,
                      std::int64_t window_us) {
  std::vector<bool> a_used(a.size(), false);
  std::vector<bool> b_used(b.size(), false);
  std::vector<record_pair> pairs;
  // An A record that never connected to Traefik cannot have caused a B record: keeping it out
  // of the pairing stops it from taking a B record that belongs to another connection.
  std::vector<bool> a_can_pair(a.size(), false);
  for (std::size_t i = 0; i < a.size(); ++i) {
    a_can_pair[i] = reached_upstream(a[i]);
  }

  // 1. exact, by the PROXY header's source address.
  std::unordered_map<std::string, std::vector<std::size_t>> a_by_source;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a_can_pair[i]) {
      continue;
    }
    if (a[i].client) {
      a_by_source[to_string(*a[i].client)].push_back(i);
    }
    if (a[i].proxy_source && a[i].proxy_source != a[i].client) {
      a_by_source[to_string(*a[i].proxy_source)].push_back(i);
    }
  }
  std::vector<candidate> exact;
  for (std::size_t j = 0; j < b.size(); ++j) {
    if (!b[j].proxy_source) {
      continue;
    }
    auto it = a_by_source.find(to_string(*b[j].proxy_source));
    if (it == a_by_source.end()) {
      continue;
    }
    for (std::size_t i : it->second) {
      exact.push_back(candidate{std::abs(b[j].ts_us - a[i].ts_us), i, j});
    }
  }
  take_greedy(exact, pair_method::proxy_source, a, b, a_used, b_used, pairs);

  // 2. time and SNI. B sorted by accept time so each A looks only at its window.
  std::vector<std::size_t> b_by_time;
  for (std::size_t j = 0; j < b.size(); ++j) {
    if (!b_used[j]) {
      b_by_time.push_back(j);
    }
  }
  std::stable_sort(b_by_time.begin(), b_by_time.end(),
                   [&](std::size_t x, std::size_t y) { return b[x].ts_us < b[y].ts_us; });
  std::vector<candidate> timed;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a_used[i] || !a_can_pair[i]) {
      continue;
    }
    const std::int64_t start = a[i].ts_us;
    const auto duration_us = static_cast<std::int64_t>(std::llround(a[i].duration_ms * 1000.0));
    const std::int64_t end = start + std::max<std::int64_t>(duration_us, 0) + window_us;
    auto first = std::lower_bound(b_by_time.begin(), b_by_time.end(), start,
                                  [&](std::size_t j, std::int64_t t) { return b[j].ts_us < t; });
    for (auto it = first; it != b_by_time.end() && b[*it].ts_us <= end; ++it) {
      if (same_sni(a[i].sni, b[*it].sni)) {
        timed.push_back(candidate{b[*it].ts_us - start, i, *it});
      }
    }
  }
  take_greedy(timed, pair_method::time_sni, a, b, a_used, b_used, pairs);

  correlation c;
  std::sort(pairs.begin(), pairs.end(),
            [](const record_pair& x, const record_pair& y) { return x.a < y.a; });
  c.pairs = std::move(pairs);
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (!a_used[i]) {
      c.a_only.push_back(unpaired{i, a_only_hint(a[i])});
    }
  }
  for (std::size_t j = 0; j < b.size(); ++j) {
    if (!b_used[j]) {
      c.b_only.push_back(
          unpaired{j, b_only_hint(b[j]) + near_miss(a, a_used, a_can_pair, b[j], window_us)});
    }
  }
  return c;
}

std::optional<std::int64_t> parse_duration_us(std::string_view text) {
  if (text == "0") {
    return 0;
  }
  std::size_t pos = 0;
  bool dot = false;
  std::size_t ndigits = 0;
  while (pos < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[pos])) || (text[pos] == '.' && !dot))) {
    if (text[pos] == '.') {
      dot = true;
    } else {
      ++ndigits;
    }
    ++pos;
  }
  if (ndigits == 0 || ndigits > 12) {
    return std::nullopt;
  }
  const std::string number(text.substr(0, pos));
  const std::string_view unit = text.substr(pos);
  double scale = 0;
  if (unit == "us") {
    scale = 1;
  } else if (unit == "ms") {
    scale = 1e3;
  } else if (unit == "s") {
    scale = 1e6;
  } else if (unit == "m") {
    scale = 60e6;
  } else {
    return std::nullopt;
  }
  return static_cast<std::int64_t>(std::llround(std::stod(number) * scale));
}

nlohmann::json to_json(const correlate_input& in, const correlation& c) {
  const auto& a = *in.a;
  const auto& b = *in.b;
  nlohmann::json j;
  j["a"] = {{"file", in.a_file}, {"records", a.size()}};
  j["b"] = {{"file", in.b_file}, {"records", b.size()}};
  j["window_ms"] = static_cast<double>(in.window_us) / 1000.0;
  nlohmann::json pairs = nlohmann::json::array();
  for (const auto& p : c.pairs) {
    nlohmann::json pj = {{"a", a[p.a].id},
                         {"b", b[p.b].id},
                         {"a_at", a[p.a].file + ":" + std::to_string(a[p.a].line)},
                         {"b_at", b[p.b].file + ":" + std::to_string(b[p.b].line)},
                         {"how", to_string(p.how)},
                         {"delay_ms", p.delay_ms}};
    if (p.how == pair_method::proxy_source) {
      pj["key"] = to_string(*b[p.b].proxy_source);
    } else {
      pj["key"] = a[p.a].sni ? nlohmann::json(*a[p.a].sni) : nlohmann::json(nullptr);
    }
    pairs.push_back(pj);
  }
  j["pairs"] = pairs;
  nlohmann::json a_only = nlohmann::json::array();
  for (const auto& u : c.a_only) {
    a_only.push_back(record_json(a[u.index], u.hint));
  }
  j["a_only"] = a_only;
  nlohmann::json b_only = nlohmann::json::array();
  for (const auto& u : c.b_only) {
    b_only.push_back(record_json(b[u.index], u.hint));
  }
  j["b_only"] = b_only;
  j["all_paired"] = c.all_paired();
  return j;
}

std::string render_text(const correlate_input& in, const correlation& c) {
  const auto& a = *in.a;
  const auto& b = *in.b;
  std::string out;
  out += fit(fmt::format("linesman correlate: A {} ({} records), B {} ({} records), window {} ms",
                         in.a_file, a.size(), in.b_file, b.size(),
                         static_cast<double>(in.window_us) / 1000.0),
             kReportWidth) +
         "\n";
  out += fmt::format("\nPairs: {}\n", c.pairs.size());
  for (const auto& p : c.pairs) {
    std::string how;
    if (p.how == pair_method::proxy_source) {
      how = "PROXY source " + to_string(*b[p.b].proxy_source);
    } else {
      how = fmt::format("time+SNI {}, B {:.2f} ms after A", sni_text(a[p.a].sni), p.delay_ms);
    }
    out +=
        fit(fmt::format("  A {:<16} <-> B {:<16} {}", fit(a[p.a].id, 16), fit(b[p.b].id, 16), how),
            kReportWidth) +
        "\n";
  }
  auto list = [&](std::string_view title, const std::vector<unpaired>& items,
                  const std::vector<access_record>& recs) {
    out += fmt::format("\n{}: {}\n", title, items.size());
    for (const auto& u : items) {
      const auto& r = recs[u.index];
      out += fit(fmt::format("  {}  {} / {}  {}/{}", r.id, r.listener, sni_text(r.sni), r.phase,
                             r.reason),
                 kReportWidth) +
             "\n";
      out += fit(fmt::format("     accepted {}  ({}:{})", r.ts,
                             std::filesystem::path(r.file).filename().string(), r.line),
                 kReportWidth) +
             "\n";
      out += wrap("hint: " + u.hint, "     ", kReportWidth);
    }
  };
  list("A only (reached A, nothing in B)", c.a_only, a);
  list("B only (reached B, nothing in A)", c.b_only, b);
  out += c.all_paired() ? "\nEvery record paired.\n" : "\nSome records are unpaired (exit 1).\n";
  return out;
}

}  // namespace linesman::tools
