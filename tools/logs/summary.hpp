// summary: what a person wants to look at first in a pile of access logs (`linesman summary`):
// per listener and SNI, how far connections got (a funnel) and where they stopped, the top stop
// reasons with an example each, and percentiles of connect time and time to first reply.
//
// Everything here is pure: summarize() takes what log_reader read and returns values; rendering
// to text or JSON is separate, so tests assert on numbers, not on text.
#pragma once

#include "tools/logs/reader.hpp"

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools {

// percentiles: nearest-rank percentiles of a set of values (the p-th percentile is the smallest
// value with at least p% of the values at or below it, so it is always one of the values).
// `n` is how many values there were; with n == 0 the other fields are meaningless (rendered null).
struct percentiles {
  std::size_t n = 0;
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  double max = 0;
};

// compute_percentiles: over `values` (taken by value: it is sorted). Empty input gives n == 0.
percentiles compute_percentiles(std::vector<double> values);

// funnel_stage: the stages of a connection's life a record can show it reached, in order.
enum class funnel_stage : std::size_t {
  accepted,     // every record
  inspected,    // the client sent something (or the connection went further)
  routed,       // a route was chosen: the connection got to the connect phase
  connected,    // the upstream TCP connection was established
  first_reply,  // the upstream sent its first bytes
  stream,       // both first flights passed and bytes were streamed
};
inline constexpr std::size_t kFunnelStages = 6;

std::string_view to_string(funnel_stage s);

// furthest_stage: the last stage `r` reached. Stages are cumulative: a record counts in every
// stage up to this one. Evidence is the stop phase (stopping in a phase means every earlier phase
// was passed) and the timings/bytes (a null timing means the event never happened).
funnel_stage furthest_stage(const access_record& r);

// reason_count: one (stop.phase, stop.reason) pair with how often it occurred and one example
// (the first record with it, in file order).
struct reason_count {
  std::string phase;
  std::string reason;
  std::size_t count = 0;
  double share = 0;  // count / records in the group, 0..1
  std::string example_hint;
  std::string example_id;
  std::string example_at;  // file:line
};

// group_summary: the numbers for one (listener, SNI) group, or for all records.
struct group_summary {
  std::string listener;            // empty for the total
  std::optional<std::string> sni;  // nullopt: no SNI (null, or not TLS)
  std::size_t connections = 0;
  std::array<std::size_t, kFunnelStages> reached{};  // indexed by funnel_stage
  // stopped: stop.phase -> count, the five known phases first in taxonomy order (zeros
  // included), then phases this build does not know, in order of first appearance.
  std::vector<std::pair<std::string, std::size_t>> stopped;
  std::vector<reason_count> reasons;  // ranked: count descending, then phase order, then name
  percentiles connect_ms;             // timing_ms.upstream_connected (since accept)
  percentiles first_reply_ms;         // upstream_first_byte - upstream_connected (both non-null)
};

// still_open: a connection seen only in interim ("state": "open") records: it was still open when
// the log ended, which is how a hang shows. The latest interim record is reported.
struct still_open {
  std::string id;
  std::string listener;
  std::optional<std::string> sni;
  std::string phase;  // stop.phase of the interim record, "" when it had none
  double age_ms = 0;  // its duration_ms
  std::string at;     // file:line
};

// pq_side: the complete ClientHellos on one side of the post-quantum split. `failed`: outcome not
// ok, or a default certificate answered (warning default_certificate), which ends "ok".
struct pq_side {
  std::size_t connections = 0;
  std::size_t failed = 0;
};

// pq_split: connections with and without a post-quantum key share side by side, and `one_sided`:
// a sentence when the failures fall only on one side (empty otherwise).
struct pq_split {
  pq_side pq;
  pq_side classic;
  std::string one_sided;
};

// pq_split_of: the split over `records` (records without a complete hello are left out).
pq_split pq_split_of(const std::vector<access_record>& records);

struct summary {
  std::vector<std::string> files;
  std::size_t records = 0;  // final records
  std::size_t interim_records = 0;
  std::size_t bad_lines = 0;
  std::vector<group_summary> groups;  // listener ascending, most connections first
  group_summary total;
  std::vector<still_open> open;
  // warnings: record warnings -> how many final records carry each, most frequent first.
  std::vector<std::pair<std::string, std::size_t>> warnings;
  pq_split pq;
};

// summarize: computes the summary of everything in `logs`. Never throws for content.
summary summarize(const log_contents& logs);

// to_json: the same content as render_text, as one JSON object.
nlohmann::json to_json(const summary& s);

// render_text: the readable form, every line at most 100 columns. `top` limits the reasons list.
std::string render_text(const summary& s, std::size_t top = 10);

// sni_label: "(no SNI)" for nullopt, else the SNI.
std::string sni_label(const std::optional<std::string>& sni);

}  // namespace linesman::tools
