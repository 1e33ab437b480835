#include "proxy/live.hpp"

#include "proxy/fault.hpp"
#include "proxy/hint.hpp"
#include "proxy/log_sink.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <tuple>

namespace linesman::proxy {

std::string_view to_string(live_phase p) {
  switch (p) {
    case live_phase::inspect:
      return "inspect";
    case live_phase::connect:
      return "connect";
    case live_phase::first_reply:
      return "first_reply";
    case live_phase::stream:
      return "stream";
  }
  return "inspect";
}

std::optional<live_phase> parse_live_phase(std::string_view s) {
  for (std::size_t i = 0; i < kLivePhases; ++i) {
    const auto p = static_cast<live_phase>(i);
    if (to_string(p) == s) {
      return p;
    }
  }
  return std::nullopt;
}

std::string_view to_string(flight_outcome o) {
  switch (o) {
    case flight_outcome::complete:
      return "complete";
    case flight_outcome::incomplete:
      return "incomplete";
    case flight_outcome::malformed:
      return "malformed";
    case flight_outcome::too_large:
      return "too_large";
    case flight_outcome::not_tls:
      return "not_tls";
    case flight_outcome::none:
      return "none";
  }
  return "none";
}

void histogram::observe_us(std::int64_t us) {
  if (us < 0) {
    return;
  }
  const double s = static_cast<double>(us) / 1e6;
  std::size_t i = 0;
  while (i < kBounds.size() && s > kBounds[i]) {
    ++i;
  }
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(static_cast<std::uint64_t>(us), std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
}

histogram::view histogram::snapshot() const {
  view v;
  std::uint64_t acc = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    acc += buckets_[i].load(std::memory_order_relaxed);
    v.cumulative[i] = acc;
  }
  // The +Inf bucket and _count must agree; use the bucket total for both.
  v.count = acc;
  v.sum_seconds = static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6;
  return v;
}

std::int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void set_phase(live_conn& c, live_phase p) {
  const auto now = steady_ns();
  if (p == live_phase::inspect) {
    for (auto& at : c.phase_at_ns) {
      at.store(0, std::memory_order_relaxed);
    }
  }
  c.phase_at_ns[static_cast<std::size_t>(p)].store(now, std::memory_order_relaxed);
  c.phase_start_ns.store(now, std::memory_order_relaxed);
  c.phase.store(static_cast<std::uint8_t>(p), std::memory_order_relaxed);
}

void live_registry::link(live_conn& c) {
  std::lock_guard lock(mu_);
  if (c.linked) {
    return;
  }
  c.prev = nullptr;
  c.next = head_;
  if (head_ != nullptr) {
    head_->prev = &c;
  }
  head_ = &c;
  c.linked = true;
}

void live_registry::unlink_locked(live_conn& c) {
  if (!c.linked) {
    return;
  }
  if (c.prev != nullptr) {
    c.prev->next = c.next;
  } else {
    head_ = c.next;
  }
  if (c.next != nullptr) {
    c.next->prev = c.prev;
  }
  c.prev = c.next = nullptr;
  c.linked = false;
}

void live_registry::set_strings(live_conn& c, const std::string* sni, const std::string* route,
                                const std::string* upstream) {
  std::lock_guard lock(mu_);
  if (sni != nullptr) {
    c.sni = *sni;
  }
  if (route != nullptr) {
    c.route = *route;
  }
  if (upstream != nullptr) {
    c.upstream = *upstream;
  }
}

void live_registry::copy_all(std::vector<live_copy>& out, std::int64_t now_ns) const {
  const auto load = [](std::uint64_t* p) -> std::uint64_t {
    return p == nullptr ? 0 : std::atomic_ref<std::uint64_t>(*p).load(std::memory_order_relaxed);
  };
  std::lock_guard lock(mu_);
  for (const live_conn* c = head_; c != nullptr; c = c->next) {
    live_copy v;
    v.id = c->id;
    v.listener = c->listener != nullptr ? c->listener->name : "";
    v.client = c->client;
    v.sni = c->sni;
    v.route = c->route;
    v.upstream = c->upstream;
    v.phase = static_cast<live_phase>(c->phase.load(std::memory_order_relaxed));
    v.pq_key_share = c->pq_key_share.load(std::memory_order_relaxed);
    const auto ps = c->phase_start_ns.load(std::memory_order_relaxed);
    const auto as = c->accepted_ns.load(std::memory_order_relaxed);
    v.phase_seconds = static_cast<double>(std::max<std::int64_t>(0, now_ns - ps)) / 1e9;
    v.age_seconds = static_cast<double>(std::max<std::int64_t>(0, now_ns - as)) / 1e9;
    for (std::size_t i = 0; i < kLivePhases; ++i) {
      const auto at = c->phase_at_ns[i].load(std::memory_order_relaxed);
      v.phase_at_seconds[i] =
          at == 0 ? -1.0 : static_cast<double>(std::max<std::int64_t>(0, at - as)) / 1e9;
    }
    v.from_client = load(c->from_client);
    v.from_upstream = load(c->from_upstream);
    v.accepted_wall = c->accepted_wall;
    out.push_back(std::move(v));
  }
}

void live_registry::add_totals(std::map<const listener_stats*, open_totals>& out) const {
  const auto load = [](std::uint64_t* p) -> std::uint64_t {
    return p == nullptr ? 0 : std::atomic_ref<std::uint64_t>(*p).load(std::memory_order_relaxed);
  };
  std::lock_guard lock(mu_);
  for (const live_conn* c = head_; c != nullptr; c = c->next) {
    open_totals& t = out[c->listener];
    const auto phase = c->phase.load(std::memory_order_relaxed);
    if (phase < kLivePhases) {
      ++t.in_phase.at(phase);
    }
    t.from_client += load(c->from_client);
    t.from_upstream += load(c->from_upstream);
  }
}

open_by_listener live_hub::count_open() const {
  std::map<const listener_stats*, open_totals> by_stats;
  for (const auto* r : registries) {
    r->add_totals(by_stats);
  }
  // By name: after a reload, connections of a listener's earlier generation count under the
  // same name as its new one.
  open_by_listener out;
  for (const auto& [stats, t] : by_stats) {
    auto& sum = out[stats != nullptr ? stats->name : std::string()];
    for (std::size_t p = 0; p < kLivePhases; ++p) {
      sum.in_phase.at(p) += t.in_phase.at(p);
    }
    sum.from_client += t.from_client;
    sum.from_upstream += t.from_upstream;
  }
  return out;
}

std::vector<live_copy> live_hub::snapshot() const {
  std::vector<live_copy> out;
  const auto now = steady_ns();
  for (const auto* r : registries) {
    r->copy_all(out, now);
  }
  return out;
}

std::vector<const listener_stats*> live_hub::current_listeners() const {
  std::lock_guard lock(mu);
  return {listeners.begin(), listeners.end()};
}

void live_hub::set_listeners(std::vector<listener_stats*> l) {
  std::lock_guard lock(mu);
  listeners = std::move(l);
}

std::string escape_label(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (const char ch : v) {
    if (ch == '\\') {
      out += "\\\\";
    } else if (ch == '"') {
      out += "\\\"";
    } else if (ch == '\n') {
      out += "\\n";
    } else {
      out += ch;
    }
  }
  return out;
}

namespace {

// number: a sample value; integers without a fraction, others with enough digits.
std::string number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string bound_text(double b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", b);
  return buf;
}

void family(std::string& out, std::string_view name, std::string_view type, std::string_view help) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

void sample(std::string& out, std::string_view name, std::string_view labels, std::uint64_t v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  out += std::to_string(v);
  out += '\n';
}

std::string lbl(std::string_view k, std::string_view v) {
  return std::string(k) + "=\"" + escape_label(v) + "\"";
}

}  // namespace

void append_histogram(std::string& out, std::string_view name, std::string_view labels,
                      const histogram::view& v) {
  const std::string sep = labels.empty() ? "" : std::string(labels) + ",";
  for (std::size_t i = 0; i < v.cumulative.size(); ++i) {
    const std::string le =
        i < histogram::kBounds.size() ? bound_text(histogram::kBounds[i]) : "+Inf";
    sample(out, std::string(name) + "_bucket", sep + "le=\"" + le + "\"", v.cumulative[i]);
  }
  out += std::string(name) + "_sum";
  if (!labels.empty()) {
    out += "{" + std::string(labels) + "}";
  }
  out += " " + number(v.sum_seconds) + "\n";
  sample(out, std::string(name) + "_count", labels, v.count);
}

std::string format_metrics(const live_hub& hub, const open_by_listener& open) {
  std::string out;
  const open_totals none;
  const auto open_of = [&](const std::string& name) -> const open_totals& {
    const auto it = open.find(name);
    return it == open.end() ? none : it->second;
  };
  const auto listeners = hub.current_listeners();
  // Open connections (a gauge computed from the registries): every listener x phase, zeros too.
  family(out, "linesman_open_connections", "gauge",
         "Connections open now, by listener and the phase they are waiting in.");
  for (const auto* l : listeners) {
    for (std::size_t p = 0; p < kLivePhases; ++p) {
      sample(out, "linesman_open_connections",
             lbl("listener", l->name) + "," + lbl("phase", to_string(static_cast<live_phase>(p))),
             open_of(l->name).in_phase.at(p));
    }
  }
  family(out, "linesman_connections_ended_total", "counter",
         "Connections ended, by listener, stop phase and stop reason.");
  for (const auto* l : listeners) {
    for (std::size_t p = 0; p < kStopPhases; ++p) {
      for (std::size_t r = 0; r < kStopReasons; ++r) {
        const auto sp = static_cast<stop_phase>(p);
        const auto sr = static_cast<stop_reason>(r);
        if (!reason_allowed_in(sp, sr)) {
          continue;
        }
        sample(out, "linesman_connections_ended_total",
               lbl("listener", l->name) + "," + lbl("phase", to_string(sp)) + "," +
                   lbl("reason", to_string(sr)),
               l->ended[p][r].load(std::memory_order_relaxed));
      }
    }
  }
  family(out, "linesman_received_bytes_total", "counter",
         "Bytes received, by listener and source (client or upstream), open connections included.");
  for (const auto* l : listeners) {
    const std::uint64_t oc = open_of(l->name).from_client;
    const std::uint64_t ou = open_of(l->name).from_upstream;
    sample(out, "linesman_received_bytes_total",
           lbl("listener", l->name) + "," + lbl("from", "client"),
           l->closed_from_client.load(std::memory_order_relaxed) + oc);
    sample(out, "linesman_received_bytes_total",
           lbl("listener", l->name) + "," + lbl("from", "upstream"),
           l->closed_from_upstream.load(std::memory_order_relaxed) + ou);
  }
  family(out, "linesman_upstream_connect_seconds", "histogram",
         "Time from starting the upstream connect to its success.");
  for (const auto* l : listeners) {
    append_histogram(out, "linesman_upstream_connect_seconds", lbl("listener", l->name),
                     l->connect_seconds.snapshot());
  }
  family(out, "linesman_first_reply_seconds", "histogram",
         "Time from the upstream connect to the upstream's first byte.");
  for (const auto* l : listeners) {
    append_histogram(out, "linesman_first_reply_seconds", lbl("listener", l->name),
                     l->first_reply_seconds.snapshot());
  }
  family(out, "linesman_peek_outcomes_total", "counter",
         "What inspection made of each ended connection's first client flight.");
  for (const auto* l : listeners) {
    for (std::size_t o = 0; o < kFlightOutcomes; ++o) {
      sample(out, "linesman_peek_outcomes_total",
             lbl("listener", l->name) + "," +
                 lbl("outcome", to_string(static_cast<flight_outcome>(o))),
             l->flight[o].load(std::memory_order_relaxed));
    }
  }
  family(out, "linesman_warnings_total", "counter",
         "Ended connections per record warning (a record may carry several, whatever its "
         "outcome).");
  for (const auto* l : listeners) {
    for (std::size_t i = 0; i < kWarningKinds; ++i) {
      sample(out, "linesman_warnings_total",
             lbl("listener", l->name) + "," + lbl("warning", kRecordWarnings[i]),
             l->warnings[i].load(std::memory_order_relaxed));
    }
  }
  family(out, "linesman_splice_fallbacks_total", "counter",
         "Stream directions that fell back from splice(2) to read/write.");
  for (const auto* l : listeners) {
    sample(out, "linesman_splice_fallbacks_total", lbl("listener", l->name),
           l->splice_fallbacks.load(std::memory_order_relaxed));
  }
  family(out, "linesman_records_dropped_total", "counter",
         "Access-log records lost, by reason: queue_full (the writer's queue was full) or "
         "write_error (a write failed: ENOSPC, EIO).");
  sample(out, "linesman_records_dropped_total", lbl("reason", "queue_full"),
         log_sink::dropped_total(log_sink::drop_reason::queue_full));
  sample(out, "linesman_records_dropped_total", lbl("reason", "write_error"),
         log_sink::dropped_total(log_sink::drop_reason::write_error));
  family(out, "linesman_records_written_total", "counter",
         "Final access-log records written (interim open records not counted).");
  sample(out, "linesman_records_written_total", "", log_sink::written_total());
  family(out, "linesman_connections_accepted_total", "counter",
         "Connections accepted; each ends in one final record, written or dropped.");
  sample(out, "linesman_connections_accepted_total", "", hub.accepted.load());
  family(out, "linesman_config_reloads_total", "counter",
         "Reloads of the --config file (SIGHUP, --watch), by result.");
  sample(out, "linesman_config_reloads_total", lbl("result", "success"),
         hub.reloads_success.load());
  sample(out, "linesman_config_reloads_total", lbl("result", "failure"),
         hub.reloads_failure.load());
  family(out, "linesman_config_generation", "gauge",
         "The configuration generation new connections get (1 at start, +1 per good reload).");
  sample(out, "linesman_config_generation", "", hub.config_generation.load());
  if (hub.faults != nullptr) {
    family(out, "linesman_faults_applied_total", "counter",
           "Connections an injected fault was applied to, by fault.");
    for (std::size_t k = 0; k < kFaultKinds; ++k) {
      const auto kind = static_cast<fault_kind>(k);
      sample(out, "linesman_faults_applied_total", lbl("fault", to_string(kind)),
             hub.faults->applied(kind));
    }
  }
  family(out, "linesman_max_connections", "gauge",
         "Accept limit: --max-connections, or derived from RLIMIT_NOFILE.");
  sample(out, "linesman_max_connections", "", hub.max_connections);
  return out;
}

static_assert(kRecordWarnings.size() == kWarningKinds);

void count_warnings(listener_stats& st, const std::vector<std::string>& warnings) {
  for (const auto& w : warnings) {
    const auto* it = std::find(kRecordWarnings.begin(), kRecordWarnings.end(), w);
    if (it != kRecordWarnings.end()) {
      st.warnings[static_cast<std::size_t>(it - kRecordWarnings.begin())].fetch_add(
          1, std::memory_order_relaxed);
    }
  }
}

}  // namespace linesman::proxy
