#include "proxy/access_record.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace linesman::proxy {
namespace {

nlohmann::json ms_or_null(std::int64_t us) {
  if (us < 0) {
    return nullptr;
  }
  return static_cast<double>(us) / 1000.0;
}

nlohmann::json endpoint_json(const endpoint_value& e) {
  return nlohmann::json{{"ip", e.ip}, {"port", e.port}};
}

nlohmann::json side_json(side_end e) {
  if (e == side_end::none) {
    return nullptr;
  }
  return std::string(to_string(e));
}

}  // namespace

std::string_view to_string(side_end e) {
  switch (e) {
    case side_end::none:
      return "none";
    case side_end::fin:
      return "fin";
    case side_end::rst:
      return "rst";
    case side_end::timeout:
      return "timeout";
    case side_end::error:
      return "error";
    case side_end::proxy:
      return "proxy";
    case side_end::never:
      return "never";
    case side_end::open:
      return "open";
  }
  return "error";
}

std::string format_rfc3339_us(std::chrono::system_clock::time_point t) {
  // Written digit by digit: strftime + snprintf were about 1% of the CPU of a short connection
  // (every record has at least one timestamp, ECS and OTel two or three). Floor, not truncation,
  // so an instant before 1970 still gets a fraction in [0, 1 s).
  using namespace std::chrono;
  const auto us = floor<microseconds>(t);
  const auto day = floor<days>(us);
  const year_month_day ymd{day};
  const hh_mm_ss<microseconds> hms{us - day};
  const int y = static_cast<int>(ymd.year());
  if (y < 0 || y > 9999) {
    return "0000-01-01T00:00:00.000000Z";  // outside RFC 3339 (never a clock's reading)
  }
  std::string out = "0000-00-00T00:00:00.000000Z";
  const auto put = [&out](std::size_t at, std::size_t width, std::uint64_t v) {
    for (std::size_t i = width; i-- > 0; v /= 10) {
      out[at + i] = static_cast<char>('0' + v % 10);
    }
  };
  put(0, 4, static_cast<std::uint64_t>(y));
  put(5, 2, static_cast<unsigned>(ymd.month()));
  put(8, 2, static_cast<unsigned>(ymd.day()));
  put(11, 2, static_cast<std::uint64_t>(hms.hours().count()));
  put(14, 2, static_cast<std::uint64_t>(hms.minutes().count()));
  put(17, 2, static_cast<std::uint64_t>(hms.seconds().count()));
  put(20, 6, static_cast<std::uint64_t>(hms.subseconds().count()));
  return out;
}

std::string errno_name(int err) {
  // strerrorname_np (glibc 2.32+) gives the symbolic name; Debian 12 has glibc 2.36.
  if (const char* name = strerrorname_np(err)) {
    return name;
  }
  return "E" + std::to_string(err);
}

void to_json(nlohmann::json& j, const access_record& r) {
  nlohmann::json stop{{"phase", to_string(r.stop.phase)},
                      {"reason", to_string(r.stop.reason)},
                      {"by", to_string(r.stop.by)}};
  if (!r.stop.errno_name.empty()) {
    stop["errno"] = r.stop.errno_name;
  }
  j = nlohmann::json{
      {"ts", format_rfc3339_us(r.ts)},
      {"id", r.id},
      {"listener", r.listener},
      {"client", endpoint_json(r.client)},
      {"local", endpoint_json(r.local)},
      {"duration_ms", static_cast<double>(r.duration_us) / 1000.0},
      {"bytes",
       {{"from_client", r.bytes.from_client},
        {"to_upstream", r.bytes.to_upstream},
        {"from_upstream", r.bytes.from_upstream},
        {"to_client", r.bytes.to_client}}},
      {"timing_ms",
       {{"client_first_byte", ms_or_null(r.timing.client_first_byte)},
        {"hello_complete", ms_or_null(r.timing.hello_complete)},
        {"upstream_connected", ms_or_null(r.timing.upstream_connected)},
        {"upstream_first_byte", ms_or_null(r.timing.upstream_first_byte)}}},
      {"close",
       {{"first", r.close.first ? nlohmann::json(to_string(*r.close.first)) : nullptr},
        {"client", side_json(r.close.client)},
        {"upstream", side_json(r.close.upstream)}}},
      {"stop", std::move(stop)},
      {"outcome", r.ok ? "ok" : "failed"},
      {"hint", r.hint},
      {"route", r.route ? nlohmann::json(*r.route) : nullptr},
  };
  if (r.upstream) {
    nlohmann::json u{{"name", r.upstream->name}, {"address", r.upstream->address}};
    if (!r.upstream->ip.empty()) {
      u["ip"] = r.upstream->ip;
      u["port"] = r.upstream->port;
    }
    if (r.upstream->local_port != 0) {
      u["local_port"] = r.upstream->local_port;
    }
    j["upstream"] = std::move(u);
  } else {
    j["upstream"] = nullptr;
  }
  if (r.client_first) {
    j["client_first"] = *r.client_first;
  }
  if (r.tls) {
    j["tls"] = *r.tls;
  }
  if (r.upstream_first) {
    j["upstream_first"] = *r.upstream_first;
  }
  if (r.server_tls) {
    j["server_tls"] = *r.server_tls;
  }
  if (r.proxy_protocol) {
    const auto& p = *r.proxy_protocol;
    nlohmann::json pj = nlohmann::json::object();
    if (p.version != 0) {
      pj["version"] = p.version;
      pj["command"] = p.command;
    }
    if (p.source) {
      pj["source"] = endpoint_json(*p.source);
    }
    if (p.destination) {
      pj["destination"] = endpoint_json(*p.destination);
    }
    if (!p.tlvs.is_null()) {
      pj["tlvs"] = p.tlvs;
    }
    pj["forwarded"] = p.forwarded;
    if (!p.error.empty()) {
      pj["error"] = p.error;
    }
    j["proxy_protocol"] = std::move(pj);
  }
  if (r.original_dst) {
    j["original_dst"] = endpoint_json(*r.original_dst);
  }
  if (!r.transparent_error.empty()) {
    j["transparent_error"] = r.transparent_error;
  }
  if (r.proxy_out) {
    nlohmann::json pj{{"version", r.proxy_out->version},
                      {"source", endpoint_json(r.proxy_out->source)},
                      {"destination", endpoint_json(r.proxy_out->destination)},
                      {"bytes", r.proxy_out->bytes}};
    if (!r.proxy_out->authority.empty()) {
      pj["authority"] = r.proxy_out->authority;
    }
    j["proxy_protocol_out"] = std::move(pj);
  }
  if (!r.warnings.empty()) {
    j["warnings"] = r.warnings;
  }
  if (r.capture) {
    j["capture"] = *r.capture;
  }
  if (r.config_generation != 0) {
    j["config_generation"] = r.config_generation;
  }
  if (r.open_state) {
    j["state"] = "open";
  }
  if (r.fault) {
    j["fault"] = fault_json(*r.fault);
  }
}

nlohmann::json fault_json(const fault_value& f) {
  nlohmann::json params = nlohmann::json::object();
  for (const auto& [k, v] : f.params) {
    // Plain whole numbers (up to 15 digits) and decimals become numbers; the rest stays text.
    const bool digits_dot =
        !v.empty() && v.size() <= 15 && v.find_first_not_of("0123456789.") == std::string::npos &&
        std::count(v.begin(), v.end(), '.') <= 1 && v.front() != '.' && v.back() != '.';
    if (digits_dot && v.find('.') == std::string::npos) {
      params[k] = std::stoull(v);
    } else if (digits_dot) {
      params[k] = std::stod(v);
    } else {
      params[k] = v;
    }
  }
  return nlohmann::json{{"name", f.name}, {"params", std::move(params)}};
}

}  // namespace linesman::proxy
