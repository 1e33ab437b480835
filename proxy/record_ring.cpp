#include "proxy/record_ring.hpp"

#include "proxy/config.hpp"

#include <algorithm>
#include <charconv>
#include <initializer_list>
#include <string_view>

namespace linesman::proxy {
namespace {

constexpr std::size_t kMaxValueBytes = 256;

// params_error: the checks every admin query shares: only `known` names, each once, each a short
// UTF-8 text without control characters. Empty when the query passes.
std::string params_error(const query_params& q, std::initializer_list<std::string_view> known) {
  for (auto it = q.begin(); it != q.end(); it = q.upper_bound(it->first)) {
    const auto& [k, v] = *it;
    if (std::find(known.begin(), known.end(), k) == known.end()) {
      std::string names;
      for (const auto n : known) {
        names += (names.empty() ? "" : ", ") + std::string(n);
      }
      const std::string shown =
          k.size() > 40 || check_text(k) != text_fault::none ? std::string() : " '" + k + "'";
      return "unknown query parameter" + shown + " (use " + names + ")";
    }
    if (q.count(k) != 1) {
      return k + ": given more than once";
    }
    if (v.size() > kMaxValueBytes) {
      return k + ": longer than " + std::to_string(kMaxValueBytes) + " bytes";
    }
    if (check_text(v) != text_fault::none) {
      return k + ": not valid UTF-8 text (or holds a control character)";
    }
  }
  return {};
}

const std::string* value_of(const query_params& q, const std::string& k) {
  const auto it = q.find(k);
  return it == q.end() ? nullptr : &it->second;
}

// window_value: a duration above 0 and at most kMaxWindow, or the 400's text in `why`.
std::optional<std::chrono::milliseconds> window_value(const std::string& text,
                                                      const std::string& name, std::string& why) {
  std::chrono::milliseconds d{};
  try {
    d = parse_duration(text, name);
  } catch (const config_error& e) {
    why = e.what();
    return std::nullopt;
  }
  if (d.count() <= 0 || d > kMaxWindow) {
    why = name + ": '" + text + "' must be above 0 and at most 24h";
    return std::nullopt;
  }
  return d;
}

bool entry_matches(const ring_entry& e, const records_query& q, wall_clock::time_point now) {
  return (!q.since || e.ended >= now - *q.since) && (!q.phase || e.phase == *q.phase) &&
         (!q.reason || e.reason == *q.reason) && (!q.listener || e.listener == *q.listener) &&
         (!q.id || e.id == *q.id);
}

}  // namespace

ring_entry make_ring_entry(const access_record& r, std::string line) {
  ring_entry e;
  e.ended = r.ts + std::chrono::microseconds(r.duration_us);
  e.listener = r.listener;
  e.id = r.id;
  e.phase = r.stop.phase;
  e.reason = r.stop.reason;
  e.line = std::move(line);
  return e;
}

std::variant<records_query, std::string> parse_records_query(const query_params& q) {
  if (auto why = params_error(q, {"since", "phase", "stop_reason", "listener", "id", "limit"});
      !why.empty()) {
    return why;
  }
  records_query out;
  std::string why;
  if (const auto* v = value_of(q, "since")) {
    out.since = window_value(*v, "since", why);
    if (!out.since) {
      return why;
    }
  }
  if (const auto* v = value_of(q, "phase")) {
    out.phase = parse_stop_phase(*v);
    if (!out.phase) {
      return "phase: use inspect, route, connect, first_reply or stream";
    }
  }
  if (const auto* v = value_of(q, "stop_reason")) {
    out.reason = parse_stop_reason(*v);
    if (!out.reason) {
      return "stop_reason: not a stop reason of docs/access-log.md (e.g. upstream_refused)";
    }
  }
  if (const auto* v = value_of(q, "listener")) {
    out.listener = *v;
  }
  if (const auto* v = value_of(q, "id")) {
    out.id = *v;
  }
  if (const auto* v = value_of(q, "limit")) {
    std::size_t n = 0;
    const auto* first = v->data();
    const auto* last = v->data() + v->size();
    const auto [end, ec] = std::from_chars(first, last, n);
    if (v->empty() || ec != std::errc() || end != last || n < 1 || n > kMaxRecordsLimit) {
      return "limit: a whole number from 1 to " + std::to_string(kMaxRecordsLimit);
    }
    out.limit = n;
  }
  return out;
}

std::variant<funnel_query, std::string> parse_funnel_query(const query_params& q) {
  if (auto why = params_error(q, {"window", "listener"}); !why.empty()) {
    return why;
  }
  funnel_query out;
  std::string why;
  if (const auto* v = value_of(q, "window")) {
    const auto w = window_value(*v, "window", why);
    if (!w) {
      return why;
    }
    out.window = *w;
  }
  if (const auto* v = value_of(q, "listener")) {
    out.listener = *v;
  }
  return out;
}

record_ring::record_ring(std::size_t max_records, std::size_t max_bytes)
    : max_records_(max_records), max_bytes_(max_bytes) {}

std::size_t record_ring::cost(const ring_entry& e) {
  return kEntryOverhead + e.line.size() + e.listener.size() + e.id.size();
}

void record_ring::evict_front_locked() {
  const auto& e = entries_.front();
  bytes_ -= cost(e);
  ++evicted_;
  if (!newest_evicted_ || e.ended > *newest_evicted_) {
    newest_evicted_ = e.ended;
  }
  entries_.pop_front();
}

void record_ring::push(std::vector<ring_entry>&& batch) {
  std::lock_guard lock(mu_);
  for (auto& e : batch) {
    e.seq = next_seq_++;
    const auto c = cost(e);
    if (c > max_bytes_ || max_records_ == 0) {
      ++evicted_;
      if (!newest_evicted_ || e.ended > *newest_evicted_) {
        newest_evicted_ = e.ended;
      }
      continue;
    }
    while (!entries_.empty() && (entries_.size() >= max_records_ || bytes_ + c > max_bytes_)) {
      evict_front_locked();
    }
    bytes_ += c;
    entries_.push_back(std::move(e));
  }
}

ring_view record_ring::query(const records_query& q, wall_clock::time_point now) const {
  ring_view out;
  std::lock_guard lock(mu_);
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (!entry_matches(*it, q, now)) {
      continue;
    }
    ++out.matched;
    if (out.lines.size() < q.limit) {
      out.lines.push_back(it->line);
    }
  }
  return out;
}

funnel_counts record_ring::funnel(const funnel_query& q, wall_clock::time_point now) const {
  funnel_counts out;
  const auto start = now - q.window;
  std::lock_guard lock(mu_);
  for (const auto& e : entries_) {
    if (e.ended < start || (q.listener && e.listener != *q.listener)) {
      continue;
    }
    ++out.ended[static_cast<std::size_t>(e.phase)][static_cast<std::size_t>(e.reason)];
    ++out.total;
  }
  out.complete = !newest_evicted_ || *newest_evicted_ < start;
  return out;
}

ring_coverage record_ring::coverage() const {
  ring_coverage out;
  std::lock_guard lock(mu_);
  out.held = entries_.size();
  out.held_bytes = bytes_;
  out.pushed = next_seq_ - 1;
  out.evicted = evicted_;
  for (const auto& e : entries_) {
    if (!out.oldest_ended || e.ended < *out.oldest_ended) {
      out.oldest_ended = e.ended;
    }
  }
  out.newest_evicted = newest_evicted_;
  return out;
}

}  // namespace linesman::proxy
