#include "proxy/fault.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <span>

namespace linesman::proxy {
namespace {

constexpr std::array<std::string_view, kFaultKinds> kNames = {
    "split_hello", "latency", "bandwidth", "reset", "blackhole", "slow_close", "truncate_hello"};

// kMaxSpecBytes: a spec is a short line; anything longer is refused before it is split.
constexpr std::size_t kMaxSpecBytes = 1024;

// spec_parser: one spec being parsed; every error names the spec and the key.
struct spec_parser {
  std::string_view what;
  std::string_view text;

  [[noreturn]] void fail(std::string_view key, const std::string& why) const {
    std::string msg = std::string(what) + ": '" + std::string(text) + "': ";
    if (!key.empty()) {
      msg += "key '" + std::string(key) + "': ";
    }
    throw config_error(msg + why);
  }

  std::uint64_t number(std::string_view key, std::string_view v, std::uint64_t lo,
                       std::uint64_t hi) const {
    std::uint64_t n = 0;
    const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (v.empty() || ec != std::errc() || ptr != v.data() + v.size() || n < lo || n > hi) {
      fail(key, "'" + std::string(v) + "' is not a whole number from " + std::to_string(lo) +
                    " to " + std::to_string(hi));
    }
    return n;
  }

  duration span(std::string_view key, std::string_view v) const {
    if (v == "0") {
      return duration{0};
    }
    duration d{0};
    try {
      d = parse_duration(v, "key '" + std::string(key) + "'");
    } catch (const config_error&) {
      fail(key, "'" + std::string(v) + "' is not a duration (500ms, 2s, 1m)");
    }
    if (d > kMaxFaultDelay) {
      fail(key, "'" + std::string(v) + "' is more than 10m");
    }
    return d;
  }

  double probability(std::string_view v) const {
    // Plain decimals only ("0", "1", "0.25"): no exponent, no sign, no nan/inf.
    const bool plain = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
      return (c >= '0' && c <= '9') || c == '.';
    });
    double p = -1;
    if (plain) {
      const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), p);
      if (ec != std::errc() || ptr != v.data() + v.size()) {
        p = -1;
      }
    }
    if (!plain || !std::isfinite(p) || p < 0 || p > 1) {
      fail("probability", "'" + std::string(v) + "' is not a number from 0 to 1");
    }
    return p;
  }
};

// kind_keys: the keys a fault of kind `k` takes besides the common ones (static storage).
std::span<const std::string_view> kind_keys(fault_kind k) {
  static constexpr std::string_view kSplit[] = {"segments", "gap", "records", "first"};
  static constexpr std::string_view kLatency[] = {"ms", "jitter"};
  static constexpr std::string_view kBandwidth[] = {"kbps"};
  static constexpr std::string_view kReset[] = {"after"};
  static constexpr std::string_view kSlowClose[] = {"delay"};
  static constexpr std::string_view kTruncate[] = {"bytes"};
  switch (k) {
    case fault_kind::split_hello:
      return kSplit;
    case fault_kind::latency:
      return kLatency;
    case fault_kind::bandwidth:
      return kBandwidth;
    case fault_kind::reset:
      return kReset;
    case fault_kind::slow_close:
      return kSlowClose;
    case fault_kind::truncate_hello:
      return kTruncate;
    case fault_kind::blackhole:
      break;
  }
  return {};
}

bool hello_only(fault_kind k) {
  return k == fault_kind::split_hello || k == fault_kind::truncate_hello;
}

void check_glob(const spec_parser& p, std::string_view key, std::string_view v) {
  const bool ok = std::all_of(v.begin(), v.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == '*' || c == '?';
  });
  if (!ok || v.size() > 255) {
    p.fail(key, "'" + std::string(v) + "' may hold letters, digits, . - _ * ? (255 at most)");
  }
}

void apply_key(const spec_parser& p, fault_spec& s, std::string_view key, std::string_view v) {
  if (key == "probability") {
    s.probability = p.probability(v);
  } else if (key == "direction") {
    if (hello_only(s.kind)) {
      p.fail(key, std::string(to_string(s.kind)) + " acts on the client's first flight only");
    }
    if (v != "up" && v != "down" && v != "both") {
      p.fail(key, "'" + std::string(v) + "' is not up, down or both");
    }
    s.direction = v == "up" ? fault_direction::up
                            : (v == "down" ? fault_direction::down : fault_direction::both);
  } else if (key == "sni") {
    check_glob(p, key, v);
    s.sni = v;
  } else if (key == "route") {
    check_glob(p, key, v);
    s.route = v;
  } else if (key == "segments") {
    s.segments = static_cast<unsigned>(p.number(key, v, 1, kMaxSplitPieces));
  } else if (key == "records") {
    s.records = static_cast<unsigned>(p.number(key, v, 1, kMaxSplitPieces));
  } else if (key == "first") {
    s.first_bytes = p.number(key, v, 1, 1 << 24);
  } else if (key == "gap") {
    s.gap = p.span(key, v);
  } else if (key == "ms") {
    s.latency = duration(p.number(key, v, 0, kMaxFaultDelay.count()));
  } else if (key == "jitter") {
    s.jitter = duration(p.number(key, v, 0, kMaxFaultDelay.count()));
  } else if (key == "kbps") {
    s.kbps = p.number(key, v, 1, kMaxKbps);
  } else if (key == "after") {
    if (v == "hello" || v == "first_reply") {
      s.after = v == "hello" ? reset_point::hello : reset_point::first_reply;
    } else if (v.starts_with("bytes=")) {
      s.after = reset_point::bytes;
      s.after_bytes = p.number(key, v.substr(6), 1, std::uint64_t{1} << 50);
    } else {
      p.fail(key, "'" + std::string(v) + "' is not hello, first_reply or bytes=N");
    }
  } else if (key == "delay") {
    s.delay = p.span(key, v);
  } else if (key == "bytes") {
    s.bytes = p.number(key, v, 0, 1 << 24);
  }
}

void check_required(const spec_parser& p, const fault_spec& s) {
  const auto has = [&](std::string_view k) {
    return std::any_of(s.params.begin(), s.params.end(),
                       [&](const auto& kv) { return kv.first == k; });
  };
  const auto need = [&](std::string_view k) {
    if (!has(k)) {
      p.fail(k, "required by " + std::string(to_string(s.kind)));
    }
  };
  switch (s.kind) {
    case fault_kind::split_hello:
      if (has("segments") == has("records")) {
        p.fail(has("segments") ? "records" : "segments",
               "split_hello takes exactly one of segments=N or records=N");
      }
      if (has("gap") && !has("segments")) {
        p.fail("gap", "goes with segments=N");
      }
      if (has("first") && !has("records")) {
        p.fail("first", "goes with records=N");
      }
      if (has("records") && s.records < 2 && has("first")) {
        p.fail("first", "needs records=2 or more");
      }
      break;
    case fault_kind::latency:
      need("ms");
      break;
    case fault_kind::bandwidth:
      need("kbps");
      break;
    case fault_kind::reset:
      need("after");
      break;
    case fault_kind::slow_close:
      need("delay");
      break;
    case fault_kind::truncate_hello:
      need("bytes");
      break;
    case fault_kind::blackhole:
      break;
  }
}

}  // namespace

std::string_view to_string(fault_kind k) { return kNames[static_cast<std::size_t>(k)]; }

fault_spec parse_fault(std::string_view text, std::string_view what) {
  spec_parser p{what, text.substr(0, std::min<std::size_t>(text.size(), 200))};
  if (text.size() > kMaxSpecBytes) {
    p.fail("", "longer than 1024 bytes");
  }
  fault_spec s;
  s.text = text;
  const auto colon = text.find(':');
  const std::string_view name = text.substr(0, colon);
  const auto it = std::find(kNames.begin(), kNames.end(), name);
  if (it == kNames.end()) {
    p.fail("", "unknown fault '" + std::string(name) +
                   "' (use split_hello, latency, bandwidth, reset, blackhole, slow_close, "
                   "truncate_hello)");
  }
  s.kind = static_cast<fault_kind>(it - kNames.begin());
  std::string_view rest =
      colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
  if (colon != std::string_view::npos && rest.empty()) {
    p.fail("", "nothing after ':'");
  }
  const auto keys = kind_keys(s.kind);
  while (!rest.empty()) {
    const auto comma = rest.find(',');
    const std::string_view item = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) {
      p.fail("", "a trailing ','");
    }
    const auto eq = item.find('=');
    const std::string_view key = item.substr(0, eq);
    if (key.empty()) {
      p.fail("", "an empty key");
    }
    const bool common =
        key == "probability" || key == "direction" || key == "sni" || key == "route";
    if (!common && std::find(keys.begin(), keys.end(), key) == keys.end()) {
      std::string known;
      for (const auto k : keys) {
        known += std::string(k) + ", ";
      }
      p.fail(key, "not a key of " + std::string(name) + " (" + known +
                      "probability, direction, sni, route)");
    }
    if (eq == std::string_view::npos || eq + 1 == item.size()) {
      p.fail(key, "needs a value (key=value)");
    }
    if (std::any_of(s.params.begin(), s.params.end(),
                    [&](const auto& kv) { return kv.first == key; })) {
      p.fail(key, "given twice");
    }
    apply_key(p, s, key, item.substr(eq + 1));
    s.params.emplace_back(std::string(key), std::string(item.substr(eq + 1)));
  }
  check_required(p, s);
  return s;
}

bool glob_match(std::string_view pattern, std::string_view name) {
  const auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  std::size_t p = 0;
  std::size_t n = 0;
  std::size_t star = std::string_view::npos;
  std::size_t resume = 0;
  // The classic two-pointer walk: on a mismatch, the last `*` takes one more character.
  while (n < name.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || lower(pattern[p]) == lower(name[n]))) {
      ++p;
      ++n;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = n;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      n = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') {
    ++p;
  }
  return p == pattern.size();
}

std::uint64_t fault_table::add(fault_spec spec, std::string listener, std::string source) {
  std::lock_guard lock(mu_);
  if (entries_.size() >= kMaxFaults) {
    return 0;
  }
  fault_entry e;
  e.id = next_id_++;
  e.listener = std::move(listener);
  e.source = std::move(source);
  e.spec = std::make_shared<const fault_spec>(std::move(spec));
  entries_.push_back(std::move(e));
  count_.store(entries_.size(), std::memory_order_release);
  return entries_.back().id;
}

void fault_table::replace_config(std::vector<std::pair<std::string, fault_spec>> faults) {
  std::lock_guard lock(mu_);
  std::vector<fault_entry> next;
  for (auto& [listener, spec] : faults) {
    fault_entry e;
    e.id = next_id_++;
    e.listener = std::move(listener);
    e.source = "config";
    e.spec = std::make_shared<const fault_spec>(std::move(spec));
    next.push_back(std::move(e));
  }
  for (auto& e : entries_) {
    if (e.source != "config") {
      next.push_back(std::move(e));
    }
  }
  entries_ = std::move(next);
  count_.store(entries_.size(), std::memory_order_release);
}

bool fault_table::remove(std::uint64_t id) {
  std::lock_guard lock(mu_);
  const auto it =
      std::find_if(entries_.begin(), entries_.end(), [&](const auto& e) { return e.id == id; });
  if (it == entries_.end()) {
    return false;
  }
  entries_.erase(it);
  count_.store(entries_.size(), std::memory_order_release);
  return true;
}

std::vector<fault_entry> fault_table::list() const {
  std::lock_guard lock(mu_);
  return entries_;
}

bool fault_table::needs_hello(std::string_view listener) const {
  if (count_.load(std::memory_order_acquire) == 0) {
    return false;
  }
  std::lock_guard lock(mu_);
  return std::any_of(entries_.begin(), entries_.end(), [&](const auto& e) {
    return (e.listener.empty() || e.listener == listener) && e.spec->probability > 0 &&
           e.spec->needs_hello();
  });
}

std::unique_ptr<applied_fault> fault_table::decide(std::string_view listener, std::string_view sni,
                                                   std::string_view route, bool held) {
  if (count_.load(std::memory_order_acquire) == 0) {
    return nullptr;
  }
  std::shared_ptr<const fault_spec> chosen;
  {
    std::lock_guard lock(mu_);
    for (const auto& e : entries_) {
      const fault_spec& s = *e.spec;
      if ((!e.listener.empty() && e.listener != listener) || s.probability <= 0 ||
          (!held && s.needs_hello()) || (!s.sni.empty() && !glob_match(s.sni, sni)) ||
          (!s.route.empty() && s.route != route)) {
        continue;
      }
      if (s.probability < 1) {
        // 53 random bits as a double in [0, 1): exactly 0 never applies, 1 always does.
        const double roll = static_cast<double>(rng_() >> 11) * 0x1.0p-53;
        if (roll >= s.probability) {
          continue;
        }
      }
      chosen = e.spec;
      break;
    }
  }
  if (!chosen) {
    return nullptr;
  }
  applied_[static_cast<std::size_t>(chosen->kind)].fetch_add(1, std::memory_order_relaxed);
  auto a = std::make_unique<applied_fault>();
  a->spec = *chosen;
  return a;
}

}  // namespace linesman::proxy
