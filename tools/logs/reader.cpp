#include "tools/logs/reader.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

namespace linesman::tools {
namespace {

using nlohmann::json;

// field_error: thrown inside parse_record only, turned into its `error` text there.
struct field_error {
  std::string what;
};

const json& member(const json& obj, const char* key, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end()) {
    throw field_error{std::string("missing ") + where + key};
  }
  return *it;
}

std::string string_field(const json& obj, const char* key, const char* where = "") {
  const json& v = member(obj, key, where);
  if (!v.is_string()) {
    throw field_error{std::string(where) + key + " is not a string"};
  }
  return v.get<std::string>();
}

// number_or_null: a timing value; absent is treated like null (the event did not happen).
std::optional<double> number_or_null(const json& obj, const char* key, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return std::nullopt;
  }
  if (!it->is_number()) {
    throw field_error{std::string(where) + key + " is not a number or null"};
  }
  return it->get<double>();
}

std::uint64_t count_or_zero(const json& obj, const char* key, const char* where) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) {
    return 0;
  }
  if (!it->is_number_integer() && !it->is_number_unsigned()) {
    throw field_error{std::string(where) + key + " is not an integer"};
  }
  const auto v = it->get<std::int64_t>();
  return v < 0 ? 0 : static_cast<std::uint64_t>(v);
}

log_endpoint endpoint_field(const json& v, const std::string& name) {
  if (!v.is_object()) {
    throw field_error{name + " is not an object"};
  }
  auto ip = v.find("ip");
  auto port = v.find("port");
  if (ip == v.end() || !ip->is_string()) {
    throw field_error{name + ".ip missing or not a string"};
  }
  if (port == v.end() || !port->is_number_integer()) {
    throw field_error{name + ".port missing or not an integer"};
  }
  return log_endpoint{normalize_ip(ip->get<std::string>()), port->get<int>()};
}

// days_from_civil: days since 1970-01-01 of a proleptic Gregorian date (the usual era-based
// arithmetic: 400-year eras of 146097 days, years starting in March so the leap day is last).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2 ? 1 : 0;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const auto yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) {
    return false;
  }
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return true;
}

bool blank(std::string_view s) {
  for (char c : s) {
    if (!std::isspace(static_cast<unsigned char>(c))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string to_string(const log_endpoint& e) {
  if (e.ip.find(':') != std::string::npos) {
    return "[" + e.ip + "]:" + std::to_string(e.port);
  }
  return e.ip + ":" + std::to_string(e.port);
}

std::string normalize_ip(std::string_view ip) {
  std::string text(ip);
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    text = text.substr(1, text.size() - 2);
  }
  std::array<char, INET6_ADDRSTRLEN> buf{};
  in_addr v4{};
  if (inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    if (inet_ntop(AF_INET, &v4, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
    return text;
  }
  in6_addr v6{};
  if (inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      std::memcpy(&v4, &v6.s6_addr[12], sizeof v4);
      if (inet_ntop(AF_INET, &v4, buf.data(), buf.size()) != nullptr) {
        return buf.data();
      }
    }
    if (inet_ntop(AF_INET6, &v6, buf.data(), buf.size()) != nullptr) {
      return buf.data();
    }
  }
  return text;
}

std::string format(const bad_line& b) {
  return b.file + ":" + std::to_string(b.line) + ": " + b.what;
}

void report_bad_lines(std::string_view prefix, const std::vector<bad_line>& bad, std::ostream& out,
                      std::size_t limit) {
  for (std::size_t i = 0; i < bad.size() && i < limit; ++i) {
    out << prefix << ": skipped " << format(bad[i]) << "\n";
  }
  if (bad.size() > limit) {
    out << prefix << ": ... and " << (bad.size() - limit) << " more bad lines skipped\n";
  }
}

std::optional<std::int64_t> parse_rfc3339_us(std::string_view s) {
  // 2026-11-26T12:00:41.123456Z
  // 0    5  8  11 14 17 19
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0;
  if (!digits(s, 0, 4, year) || s.size() < 20 || s[4] != '-' || !digits(s, 5, 2, month) ||
      s[7] != '-' || !digits(s, 8, 2, day) || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
      !digits(s, 11, 2, hour) || s[13] != ':' || !digits(s, 14, 2, minute) || s[16] != ':' ||
      !digits(s, 17, 2, second)) {
    return std::nullopt;
  }
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  std::int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    std::size_t n = 0;
    std::int64_t scale = 100000;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos]))) {
      if (n < 6) {
        micros += (s[pos] - '0') * scale;
        scale /= 10;
      }
      ++n;
      ++pos;
    }
    if (n == 0) {
      return std::nullopt;
    }
  }
  std::int64_t offset_s = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh = 0, om = 0;
    if (!digits(s, pos + 1, 2, oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !digits(s, pos + 4, 2, om)) {
      return std::nullopt;
    }
    offset_s = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) {
    return std::nullopt;
  }
  const std::int64_t days =
      days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day));
  const std::int64_t secs = days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
  return secs * 1000000 + micros;
}

std::optional<access_record> parse_record(std::string_view line, std::string& error) {
  json j;
  try {
    j = json::parse(line);
  } catch (const json::parse_error& e) {
    // nlohmann's message starts with "[json.exception.parse_error.101] ": keep what follows.
    std::string msg = e.what();
    if (auto close = msg.find("] "); msg.rfind("[json.exception", 0) == 0 && close != msg.npos) {
      msg = msg.substr(close + 2);
    }
    error = "not JSON: " + msg;
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  try {
    access_record r;
    if (auto st = j.find("state"); st != j.end()) {
      if (!st->is_string()) {
        throw field_error{"state is not a string"};
      }
      r.open = st->get<std::string>() == "open";
    }
    r.id = string_field(j, "id");
    r.ts = string_field(j, "ts");
    auto ts = parse_rfc3339_us(r.ts);
    if (!ts) {
      throw field_error{"ts is not an RFC 3339 time: \"" + r.ts + "\""};
    }
    r.ts_us = *ts;
    r.listener = string_field(j, "listener");
    if (auto c = j.find("client"); c != j.end()) {
      r.client = endpoint_field(*c, "client");
    } else if (!r.open) {
      throw field_error{"missing client"};
    }
    if (auto pp = j.find("proxy_protocol"); pp != j.end() && pp->is_object()) {
      if (auto src = pp->find("source"); src != pp->end() && !src->is_null()) {
        r.proxy_source = endpoint_field(*src, "proxy_protocol.source");
      }
    }
    if (auto t = j.find("tls"); t != j.end() && !t->is_null()) {
      if (!t->is_object()) {
        throw field_error{"tls is not an object"};
      }
      r.has_tls = true;
      if (auto sni = t->find("sni"); sni != t->end() && !sni->is_null()) {
        if (!sni->is_string()) {
          throw field_error{"tls.sni is not a string or null"};
        }
        r.sni = sni->get<std::string>();
      }
      const auto complete = t->find("complete");
      const auto pq = t->find("pq_key_share");
      if (pq != t->end() && pq->is_boolean() && complete != t->end() && complete->is_boolean() &&
          complete->get<bool>()) {
        r.pq_key_share = pq->get<bool>();
      }
    }
    if (auto w = j.find("warnings"); w != j.end() && w->is_array()) {
      for (const auto& name : *w) {
        if (name.is_string()) {
          r.warnings.push_back(name.get<std::string>());
        }
      }
    }
    if (auto d = j.find("duration_ms"); d != j.end() && d->is_number()) {
      r.duration_ms = d->get<double>();
    } else if (d != j.end() || !r.open) {
      throw field_error{"duration_ms missing or not a number"};
    }
    if (auto t = j.find("timing_ms"); t != j.end() && t->is_object()) {
      r.client_first_byte_ms = number_or_null(*t, "client_first_byte", "timing_ms.");
      r.hello_complete_ms = number_or_null(*t, "hello_complete", "timing_ms.");
      r.upstream_connected_ms = number_or_null(*t, "upstream_connected", "timing_ms.");
      r.upstream_first_byte_ms = number_or_null(*t, "upstream_first_byte", "timing_ms.");
    } else if (t != j.end() || !r.open) {
      throw field_error{"timing_ms missing or not an object"};
    }
    if (auto b = j.find("bytes"); b != j.end() && b->is_object()) {
      r.bytes_from_client = count_or_zero(*b, "from_client", "bytes.");
      r.bytes_from_upstream = count_or_zero(*b, "from_upstream", "bytes.");
    }
    if (auto rt = j.find("route"); rt != j.end() && rt->is_string()) {
      r.route = rt->get<std::string>();
    }
    if (auto stop = j.find("stop"); stop != j.end()) {
      if (!stop->is_object()) {
        throw field_error{"stop is not an object"};
      }
      r.phase = string_field(*stop, "phase", "stop.");
      r.reason = string_field(*stop, "reason", "stop.");
      if (auto by = stop->find("by"); by != stop->end() && by->is_string()) {
        r.by = by->get<std::string>();
      }
    } else if (!r.open) {
      throw field_error{"missing stop"};
    }
    if (auto o = j.find("outcome"); o != j.end() && o->is_string()) {
      r.outcome = o->get<std::string>();
    }
    if (auto h = j.find("hint"); h != j.end() && h->is_string()) {
      r.hint = h->get<std::string>();
    }
    return r;
  } catch (const field_error& e) {
    error = e.what;
    return std::nullopt;
  } catch (const json::exception& e) {
    // get<int>() on an out-of-range number and the like: report, never abort the run.
    error = e.what();
    return std::nullopt;
  }
}

void read_log(std::istream& in, const std::string& name, log_contents& out) {
  out.files.push_back(name);
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (!line.empty() && line.back() == '\r') {
      line.pop_back();
    }
    if (blank(line)) {
      ++out.blank_lines;
      continue;
    }
    std::string error;
    auto rec = parse_record(line, error);
    if (!rec) {
      out.bad_lines.push_back(bad_line{name, n, std::move(error)});
      continue;
    }
    rec->file = name;
    rec->line = n;
    (rec->open ? out.open_records : out.records).push_back(std::move(*rec));
  }
}

void read_log_file(const std::string& path, log_contents& out) {
  if (path == "-") {
    read_log(std::cin, "-", out);
    if (std::cin.bad()) {
      throw log_open_error("cannot read standard input");
    }
    return;
  }
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    throw log_open_error("cannot read '" + path + "': is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw log_open_error("cannot read '" + path + "': " + std::strerror(errno));
  }
  read_log(in, path, out);
  if (in.bad()) {
    throw log_open_error("cannot read '" + path + "': " + std::strerror(errno));
  }
}

}  // namespace linesman::tools
