// correlate: pairs the access-log records of two linesman placements on one path (`linesman
// correlate A.jsonl B.jsonl`), A = client -> linesman -> Traefik, B = Traefik -> linesman ->
// backend, and lists what reached one side and not the other. This is how the quiet "Traefik
// never dialed the backend" failures (a service address without a port, for one) become visible.
//
// Pairing, in this order, each record used at most once (A records that never connected to
// Traefik take no part: nothing of theirs can have reached B):
//  1. exact: B received a PROXY protocol header whose source equals A's client address (or A's own
//     PROXY source, when A sits behind another proxy); among several such A records the one
//     nearest in time wins.
//  2. time and SNI, for what is left: B's accept time lies within
//     [A.ts, A.ts + A.duration_ms + window] and B's tls.sni equals A's (case-insensitively; both
//     absent also counts as equal). Candidates are taken greedily, nearest in time first.
// Pure functions over records; rendering is separate so tests assert on indices, not text.
#pragma once

#include "tools/logs/reader.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools {

enum class pair_method { proxy_source, time_sni };

std::string_view to_string(pair_method m);  // "proxy_source" | "time_sni"

// record_pair: indices into the A and B record lists.
struct record_pair {
  std::size_t a = 0;
  std::size_t b = 0;
  pair_method how = pair_method::time_sni;
  double delay_ms = 0;  // B's accept time minus A's (negative only for exact pairs)
};

// unpaired: a record with no partner, and a sentence on what that usually means.
struct unpaired {
  std::size_t index = 0;
  std::string hint;
};

struct correlation {
  std::vector<record_pair> pairs;  // in A's order
  std::vector<unpaired> a_only;    // in A's order
  std::vector<unpaired> b_only;    // in B's order

  bool all_paired() const { return a_only.empty() && b_only.empty(); }
};

// kNeverDialedHint: the hint for an A record that reached Traefik with no B record.
inline constexpr std::string_view kNeverDialedHint =
    "reached Traefik but Traefik never dialed the backend: check the service's server address "
    "has a port and the router matched";

// correlate: pairs `a` with `b` (final records only) as described above. `window_us` >= 0.
correlation correlate(const std::vector<access_record>& a, const std::vector<access_record>& b,
                      std::int64_t window_us);

// parse_duration_us: "250us", "500ms", "1s", "1.5s", "2m" (or "0") to microseconds; nullopt for
// anything else, including negative values.
std::optional<std::int64_t> parse_duration_us(std::string_view text);

// correlate_input: what the renderers need besides the correlation itself.
struct correlate_input {
  std::string a_file;
  std::string b_file;
  const std::vector<access_record>* a = nullptr;
  const std::vector<access_record>* b = nullptr;
  std::int64_t window_us = 0;
};

// to_json: pairs and unpaired records as one JSON object (ids, file:line, how, hints).
nlohmann::json to_json(const correlate_input& in, const correlation& c);

// render_text: the readable form, at most 100 columns a line.
std::string render_text(const correlate_input& in, const correlation& c);

}  // namespace linesman::tools
