#include "proxy/config.hpp"

#include "proxy/address.hpp"
#include "proxy/fault.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/yaml.h>

namespace linesman::proxy {
namespace {

// fail: throws config_error with `msg`, whose quoted input is shown safely: control characters
// and bytes that are not UTF-8 (a NUL in an address, a binary file) become \xNN, so the message
// stays one readable line on a terminal and in a journal.
[[noreturn]] void fail(std::string msg) {
  if (check_text(msg) == text_fault::none) {
    throw config_error(std::move(msg));
  }
  std::string out;
  std::size_t i = 0;
  while (i < msg.size()) {
    const std::size_t len = utf8_char_len(std::string_view(msg).substr(i));
    const auto c = static_cast<unsigned char>(msg[i]);
    if (len == 0 || (len == 1 && (c < 0x20 || c == 0x7f))) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[c >> 4U];
      out += kHex[c & 0xfU];
      i += 1;
    } else {
      out.append(msg, i, len);
      i += len;
    }
  }
  throw config_error(std::move(out));
}

bool is_ip_literal(const std::string& host) {
  in6_addr a6{};
  in_addr a4{};
  return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

// parse_yaml: the YAML document in `text`. A syntax error names the file and line; nesting past
// yaml-cpp's depth guard (a few hundred levels; its own message is only "bad file") is named as
// such. Aliases are not expanded (yaml-cpp shares the node), so an alias bomb costs nothing here
// and is refused by the key checks that follow.
YAML::Node parse_yaml(const std::string& text, const std::string& file) {
  try {
    return YAML::Load(text);
  } catch (const YAML::DeepRecursion& e) {
    fail(file + ":" + std::to_string(e.mark.line + 1) + ": nested too deeply (" +
         std::to_string(e.depth()) + " levels; a configuration needs fewer than ten)");
  } catch (const YAML::Exception& e) {
    fail(file + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

// yaml_where: "FILE:LINE: KEY" for messages; yaml-cpp lines are 0-based.
std::string yaml_where(const std::string& file, const YAML::Node& node, const std::string& key) {
  const auto mark = node.Mark();
  std::string out = file;
  if (mark.line >= 0) {
    out += ":" + std::to_string(mark.line + 1);
  }
  return out + ": " + key;
}

std::string yaml_scalar(const std::string& file, const YAML::Node& node, const std::string& key) {
  if (!node.IsScalar()) {
    fail(yaml_where(file, node, key) + ": expected a scalar value");
  }
  return node.Scalar();
}

void check_keys(const std::string& file, const YAML::Node& map, const std::string& path,
                std::initializer_list<std::string_view> allowed) {
  if (!map.IsMap()) {
    fail(yaml_where(file, map, path) + ": expected a mapping");
  }
  // yaml-cpp keeps both of two equal keys and lookups see only one: refuse the second.
  std::set<std::string> seen;
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) {
      fail(yaml_where(file, kv.first, path) + ": a key must be a name, not a list or mapping");
    }
    const std::string k = kv.first.Scalar();
    if (!seen.insert(k).second) {
      fail(yaml_where(file, kv.first, path.empty() ? k : path + "." + k) + ": given twice");
    }
    bool ok = false;
    for (auto a : allowed) {
      ok = ok || a == k;
    }
    if (!ok) {
      fail(yaml_where(file, kv.first, path.empty() ? k : path + "." + k) + ": unknown key");
    }
  }
}

// timeout_value: parse_duration, refusing zero: a zero timeout would end every connection
// (or every wait) at once, which is never what the operator meant.
duration timeout_value(std::string_view text, std::string_view what) {
  const duration d = parse_duration(text, what);
  if (d.count() == 0) {
    fail(std::string(what) + ": timeout '" + std::string(text) + "' must be above 0");
  }
  return d;
}

void yaml_timeouts(const std::string& file, const YAML::Node& node, const std::string& path,
                   timeouts& out) {
  check_keys(file, node, path, {"peek", "connect", "idle", "drain"});
  auto one = [&](const char* key, duration& dst) {
    if (const auto v = node[key]) {
      const std::string where = yaml_where(file, v, path + "." + key);
      dst = timeout_value(yaml_scalar(file, v, path + "." + key), where);
    }
  };
  one("peek", out.peek);
  one("connect", out.connect);
  one("idle", out.idle);
  one("drain", out.drain);
}

void apply_timeout_flags(const cli_listener& cli, timeouts& t) {
  if (cli.peek) {
    t.peek = timeout_value(*cli.peek, "--peek-timeout");
  }
  if (cli.connect) {
    t.connect = timeout_value(*cli.connect, "--connect-timeout");
  }
  if (cli.idle) {
    t.idle = timeout_value(*cli.idle, "--idle-timeout");
  }
  if (cli.drain) {
    t.drain = timeout_value(*cli.drain, "--drain-timeout");
  }
}

// check_name: a listener or route name reaches JSON (/api/listeners) and Prometheus labels
// (/metrics) as is, so it must be valid UTF-8 without control characters.
void check_name(const std::string& name, const std::string& where) {
  switch (check_text(name)) {
    case text_fault::none:
      return;
    case text_fault::control:
      fail(where + ": control character in name");
    case text_fault::not_utf8:
      fail(where + ": name is not valid UTF-8");
  }
}

void check_sni_pattern(const std::string& sni, const std::string& where) {
  if (sni.empty() || sni == "." || sni == "*" || sni == "*.") {
    fail(where + ": empty SNI pattern '" + sni + "'");
  }
  const auto star = sni.find('*');
  if (star != std::string::npos &&
      (star != 0 || sni.size() < 3 || sni[1] != '.' || sni.find('*', 1) != std::string::npos)) {
    fail(where + ": bad SNI pattern '" + sni + "' (use host.example.com or *.example.com)");
  }
  for (char c : sni) {
    if (c <= 0x20 || c == 0x7f || c == '=' || c == '/') {
      fail(where + ": bad character in SNI pattern '" + sni + "'");
    }
  }
}

void check_listener(const listener_config& l, const std::string& where) {
  if (!is_ip_literal(l.listen.host)) {
    fail(where + ": listen address '" + l.listen.text + "' must be an IP address and port");
  }
  if (!l.upstream && l.routes.empty() && !l.transparent) {
    fail(where + ": a listener needs an upstream, at least one route, or transparent: true");
  }
}

proxy_in_mode parse_proxy_in(const std::string& v, const std::string& where) {
  if (v == "off") {
    return proxy_in_mode::off;
  }
  if (v == "auto") {
    return proxy_in_mode::auto_detect;
  }
  if (v == "v1") {
    return proxy_in_mode::v1;
  }
  if (v == "v2") {
    return proxy_in_mode::v2;
  }
  fail(where + ": '" + v + "' is not one of off, auto, v1, v2");
}

int parse_proxy_out(const std::string& v, const std::string& where) {
  if (v == "v1") {
    return 1;
  }
  if (v == "v2") {
    return 2;
  }
  if (v == "off") {
    return 0;
  }
  fail(where + ": '" + v + "' is not one of v1, v2, off");
}

std::vector<cidr> default_trusted() {
  return {parse_cidr("127.0.0.0/8", "trusted"), parse_cidr("::1/128", "trusted")};
}

// yaml_proxy_protocol: a listener's proxy_protocol_in, proxy_protocol_in_action, trusted and
// proxy_protocol_out keys.
void yaml_proxy_protocol(const std::string& file, const YAML::Node& node, const std::string& path,
                         proxy_protocol_config& pp) {
  if (const auto v = node["proxy_protocol_in"]) {
    pp.in = parse_proxy_in(yaml_scalar(file, v, path + ".proxy_protocol_in"),
                           yaml_where(file, v, path + ".proxy_protocol_in"));
  }
  if (const auto v = node["proxy_protocol_in_action"]) {
    const auto a = yaml_scalar(file, v, path + ".proxy_protocol_in_action");
    if (a != "forward" && a != "strip") {
      fail(yaml_where(file, v, path + ".proxy_protocol_in_action") + ": '" + a +
           "' is not one of forward, strip");
    }
    pp.strip = a == "strip";
  }
  if (const auto v = node["proxy_protocol_out"]) {
    pp.out = parse_proxy_out(yaml_scalar(file, v, path + ".proxy_protocol_out"),
                             yaml_where(file, v, path + ".proxy_protocol_out"));
  }
  if (const auto v = node["trusted"]) {
    if (!v.IsSequence()) {
      fail(yaml_where(file, v, path + ".trusted") + ": expected a list of CIDRs");
    }
    pp.trusted.clear();
    for (std::size_t i = 0; i < v.size(); ++i) {
      const std::string key = path + ".trusted[" + std::to_string(i) + "]";
      pp.trusted.push_back(parse_cidr(yaml_scalar(file, v[i], key), yaml_where(file, v[i], key)));
    }
  }
}

}  // namespace

std::size_t utf8_char_len(std::string_view s) {
  if (s.empty()) {
    return 0;
  }
  const auto c = static_cast<unsigned char>(s[0]);
  if (c < 0x80) {
    return 1;
  }
  // Lead byte: 110xxxxx (2 bytes, >= U+0080), 1110xxxx (3), 11110xxx (4, <= U+10FFFF).
  const std::size_t len = (c >= 0xc2 && c <= 0xdf)   ? 2
                          : (c >= 0xe0 && c <= 0xef) ? 3
                          : (c >= 0xf0 && c <= 0xf4) ? 4
                                                     : 0;
  bool ok = len != 0 && len <= s.size();
  for (std::size_t k = 1; ok && k < len; ++k) {
    ok = (static_cast<unsigned char>(s[k]) & 0xc0U) == 0x80;
  }
  if (ok && len == 3) {  // no overlong forms, no UTF-16 surrogates
    const auto c1 = static_cast<unsigned char>(s[1]);
    ok = !(c == 0xe0 && c1 < 0xa0) && !(c == 0xed && c1 >= 0xa0);
  }
  if (ok && len == 4) {
    const auto c1 = static_cast<unsigned char>(s[1]);
    ok = !(c == 0xf0 && c1 < 0x90) && !(c == 0xf4 && c1 >= 0x90);
  }
  return ok ? len : 0;
}

text_fault check_text(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      return text_fault::control;
    }
    const std::size_t len = utf8_char_len(s.substr(i));
    if (len == 0) {
      return text_fault::not_utf8;
    }
    i += len;
  }
  return text_fault::none;
}

cidr parse_cidr(std::string_view text, std::string_view what) {
  const std::string bad = std::string(what) + ": bad network '" + std::string(text) +
                          "' (use 10.0.0.0/8, 2001:db8::/32 or an address)";
  cidr out;
  out.text = std::string(text);
  const auto slash = text.find('/');
  const std::string host(text.substr(0, slash));
  if (inet_pton(AF_INET, host.c_str(), out.addr.data()) == 1) {
    out.len = 4;
  } else if (inet_pton(AF_INET6, host.c_str(), out.addr.data()) == 1) {
    out.len = 16;
  } else {
    fail(bad);
  }
  unsigned prefix = out.len * 8u;
  if (slash != std::string_view::npos) {
    const auto p = text.substr(slash + 1);
    const auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
    if (p.empty() || ec != std::errc() || ptr != p.data() + p.size() || prefix > out.len * 8u) {
      fail(bad);
    }
  }
  out.prefix = static_cast<std::uint8_t>(prefix);
  return out;
}

bool cidr_contains(const cidr& net, std::span<const std::uint8_t> addr) {
  static constexpr std::array<std::uint8_t, 12> kMapped = {0, 0, 0, 0, 0,    0,
                                                           0, 0, 0, 0, 0xff, 0xff};
  if (addr.size() == 16 && net.len == 4 &&
      std::equal(kMapped.begin(), kMapped.end(), addr.begin())) {
    addr = addr.subspan(12);
  }
  if (addr.size() != net.len) {
    return false;
  }
  unsigned bits = net.prefix;
  for (std::size_t i = 0; i < addr.size() && bits > 0; ++i) {
    const unsigned take = bits >= 8 ? 8u : bits;
    const auto mask = static_cast<std::uint8_t>(0xffu << (8u - take));
    if ((addr[i] & mask) != (net.addr[i] & mask)) {
      return false;
    }
    bits -= take;
  }
  return true;
}

duration parse_duration(std::string_view text, std::string_view what) {
  const std::string bad = std::string(what) + ": bad duration '" + std::string(text) +
                          "' (use a number with a unit: 500ms, 5s, 2m, 1h)";
  std::size_t i = 0;
  while (i < text.size() && ((text[i] >= '0' && text[i] <= '9') || text[i] == '.')) {
    ++i;
  }
  const std::string_view number = text.substr(0, i);
  const std::string_view unit = text.substr(i);
  if (number.empty() || number.front() == '.' || number.back() == '.') {
    fail(bad);
  }
  double value = 0;
  try {
    std::size_t used = 0;
    value = std::stod(std::string(number), &used);
    if (used != number.size()) {
      fail(bad);
    }
  } catch (const std::logic_error&) {
    fail(bad);
  }
  double scale = 0;
  if (unit == "ms") {
    scale = 1;
  } else if (unit == "s") {
    scale = 1000;
  } else if (unit == "m") {
    scale = 60'000;
  } else if (unit == "h") {
    scale = 3'600'000;
  } else {
    fail(bad);
  }
  const double ms = std::round(value * scale);
  if (!std::isfinite(ms) || ms > 365.0 * 24 * 3'600'000) {
    fail(bad);
  }
  return duration(static_cast<duration::rep>(ms));
}

std::uint64_t parse_capture_bytes(std::string_view text, std::string_view what) {
  if (text == "all") {
    return ~std::uint64_t{0};
  }
  std::string_view digits = text;
  std::uint64_t unit = 1;
  if (!digits.empty() && (digits.back() == 'k' || digits.back() == 'K')) {
    unit = 1024;
    digits.remove_suffix(1);
  } else if (!digits.empty() && (digits.back() == 'm' || digits.back() == 'M')) {
    unit = 1024 * 1024;
    digits.remove_suffix(1);
  }
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size() || v == 0 ||
      v > (std::uint64_t{1} << 50) / unit) {
    fail(std::string(what) + ": '" + std::string(text) +
         "' is not a byte count (like 65536, 64k, 10M) or 'all'");
  }
  return v * unit;
}

host_port parse_host_port(std::string_view text, std::string_view what, bool allow_zero_port) {
  if (check_text(text) != text_fault::none) {
    // No host name holds a control character or invalid UTF-8: it could never resolve, and it
    // would reach the records and messages as is.
    fail(std::string(what) + ": bad address '" + std::string(text) +
         "' (a control character or invalid UTF-8)");
  }
  address_parts parts;
  const address_error e = parse_address(text, {.zero_port = allow_zero_port}, parts);
  if (is_port_error(e)) {
    fail(std::string(what) + ": bad port in '" + std::string(text) + "' (1-65535" +
         (allow_zero_port ? ", or 0 for any" : "") + ")");
  }
  if (e != address_error::none) {
    fail(std::string(what) + ": bad address '" + std::string(text) +
         "' (use HOST:PORT, or [IPv6]:PORT)");
  }
  return host_port{std::move(parts.host), parts.port, std::string(text)};
}

std::vector<listener_config> load_yaml_listeners(const std::string& text, const std::string& file,
                                                 const timeouts& base,
                                                 const cli_listener& overrides) {
  const YAML::Node root = parse_yaml(text, file);
  if (!root.IsMap()) {
    fail(file + ": expected a mapping with 'listeners' (and optionally 'defaults')");
  }
  check_keys(file, root, "", {"defaults", "listeners", "admin"});
  timeouts defaults = base;
  if (const auto d = root["defaults"]) {
    check_keys(file, d, "defaults", {"timeouts"});
    if (const auto t = d["timeouts"]) {
      yaml_timeouts(file, t, "defaults.timeouts", defaults);
    }
  }
  apply_timeout_flags(overrides, defaults);  // flags beat the file's defaults
  const auto ls = root["listeners"];
  if (!ls || !ls.IsSequence() || ls.size() == 0) {
    fail(yaml_where(file, ls ? ls : root, "listeners") + ": expected a non-empty list");
  }
  std::vector<listener_config> out;
  for (std::size_t i = 0; i < ls.size(); ++i) {
    const auto node = ls[i];
    const std::string path = "listeners[" + std::to_string(i) + "]";
    check_keys(file, node, path,
               {"name", "listen", "upstream", "routes", "access_log", "log_format", "timeouts",
                "capture", "proxy_protocol_in", "proxy_protocol_in_action", "proxy_protocol_out",
                "trusted", "transparent", "faults"});
    listener_config l;
    l.limits = defaults;
    l.pp.trusted = default_trusted();
    yaml_proxy_protocol(file, node, path, l.pp);
    if (const auto t = node["transparent"]) {
      const auto v = yaml_scalar(file, t, path + ".transparent");
      if (v != "true" && v != "false") {
        fail(yaml_where(file, t, path + ".transparent") + ": expected true or false");
      }
      l.transparent = v == "true";
    }
    const auto listen = node["listen"];
    if (!listen) {
      fail(yaml_where(file, node, path + ".listen") + ": missing");
    }
    l.listen = parse_host_port(yaml_scalar(file, listen, path + ".listen"),
                               yaml_where(file, listen, path + ".listen"), true);
    l.name = l.listen.text;
    if (const auto n = node["name"]) {
      l.name = yaml_scalar(file, n, path + ".name");
      check_name(l.name, yaml_where(file, n, path + ".name"));
    }
    if (const auto u = node["upstream"]) {
      l.upstream = parse_host_port(yaml_scalar(file, u, path + ".upstream"),
                                   yaml_where(file, u, path + ".upstream"), false);
    }
    if (const auto a = node["access_log"]) {
      l.access_log = yaml_scalar(file, a, path + ".access_log");
    }
    if (const auto f = node["log_format"]) {
      l.access_log_format = parse_log_format(yaml_scalar(file, f, path + ".log_format"),
                                             yaml_where(file, f, path + ".log_format"));
    } else if (overrides.log_format) {
      l.access_log_format = parse_log_format(*overrides.log_format, "--log-format");
    }
    if (const auto t = node["timeouts"]) {
      yaml_timeouts(file, t, path + ".timeouts", l.limits);
    }
    if (const auto fs = node["faults"]) {
      // Injected faults (proxy/fault.hpp): a list of specs, each checked here.
      if (!fs.IsSequence()) {
        fail(yaml_where(file, fs, path + ".faults") + ": expected a list of fault specs");
      }
      for (std::size_t j = 0; j < fs.size(); ++j) {
        const std::string fpath = path + ".faults[" + std::to_string(j) + "]";
        const std::string spec = yaml_scalar(file, fs[j], fpath);
        (void)parse_fault(spec, yaml_where(file, fs[j], fpath));
        l.faults.push_back(spec);
      }
    }
    if (const auto c = node["capture"]) {
      const std::string cpath = path + ".capture";
      if (!c.IsMap()) {
        fail(yaml_where(file, c, cpath) + ": expected a mapping with dir, bytes, max_total_bytes");
      }
      check_keys(file, c, cpath, {"dir", "bytes", "max_total_bytes"});
      const auto d = c["dir"];
      if (!d) {
        fail(yaml_where(file, c, cpath + ".dir") + ": missing");
      }
      l.capture.dir = yaml_scalar(file, d, cpath + ".dir");
      if (l.capture.dir.empty()) {
        fail(yaml_where(file, d, cpath + ".dir") + ": empty");
      }
      if (const auto b = c["bytes"]) {
        l.capture.bytes_per_direction = parse_capture_bytes(yaml_scalar(file, b, cpath + ".bytes"),
                                                            yaml_where(file, b, cpath + ".bytes"));
      }
      if (const auto m = c["max_total_bytes"]) {
        const auto v = parse_capture_bytes(yaml_scalar(file, m, cpath + ".max_total_bytes"),
                                           yaml_where(file, m, cpath + ".max_total_bytes"));
        l.capture.max_total_bytes = v;
      }
    }
    if (const auto rs = node["routes"]) {
      if (!rs.IsSequence()) {
        fail(yaml_where(file, rs, path + ".routes") + ": expected a list");
      }
      for (std::size_t j = 0; j < rs.size(); ++j) {
        const auto r = rs[j];
        const std::string rpath = path + ".routes[" + std::to_string(j) + "]";
        check_keys(file, r, rpath, {"sni", "upstream", "name", "proxy_protocol_out"});
        route_config rc;
        const auto sni = r["sni"];
        const auto up = r["upstream"];
        if (!sni) {
          fail(yaml_where(file, r, rpath + ".sni") + ": missing");
        }
        if (!up) {
          fail(yaml_where(file, r, rpath + ".upstream") + ": missing");
        }
        rc.sni = yaml_scalar(file, sni, rpath + ".sni");
        check_sni_pattern(rc.sni, yaml_where(file, sni, rpath + ".sni"));
        rc.upstream = parse_host_port(yaml_scalar(file, up, rpath + ".upstream"),
                                      yaml_where(file, up, rpath + ".upstream"), false);
        rc.name = rc.sni;
        if (const auto n = r["name"]) {
          rc.name = yaml_scalar(file, n, rpath + ".name");
          check_name(rc.name, yaml_where(file, n, rpath + ".name"));
        }
        if (const auto po = r["proxy_protocol_out"]) {
          rc.proxy_out = parse_proxy_out(yaml_scalar(file, po, rpath + ".proxy_protocol_out"),
                                         yaml_where(file, po, rpath + ".proxy_protocol_out"));
        }
        l.routes.push_back(std::move(rc));
      }
    }
    check_listener(l, yaml_where(file, node, path));
    out.push_back(std::move(l));
  }
  return out;
}

admin_config load_yaml_admin(const std::string& text, const std::string& file) {
  admin_config out;
  const YAML::Node root = parse_yaml(text, file);
  if (!root.IsMap() || !root["admin"]) {
    return out;
  }
  const auto a = root["admin"];
  check_keys(file, a, "admin", {"listen", "token", "allow_remote"});
  if (const auto l = a["listen"]) {
    out.listen = yaml_scalar(file, l, "admin.listen");
    (void)parse_host_port(out.listen, yaml_where(file, l, "admin.listen"), true);
  }
  if (const auto t = a["token"]) {
    out.token = yaml_scalar(file, t, "admin.token");
  }
  if (const auto r = a["allow_remote"]) {
    const auto v = yaml_scalar(file, r, "admin.allow_remote");
    if (v != "true" && v != "false") {
      fail(yaml_where(file, r, "admin.allow_remote") + ": expected true or false");
    }
    out.allow_remote = v == "true";
  }
  return out;
}

void check_admin(const admin_config& a, std::string_view what) {
  if (a.listen.empty()) {
    return;
  }
  const auto hp = parse_host_port(a.listen, what, true);
  if (!is_ip_literal(hp.host)) {
    fail(std::string(what) + ": '" + a.listen + "' must be an IP address and port");
  }
  in_addr v4{};
  in6_addr v6{};
  if (::inet_pton(AF_INET, hp.host.c_str(), &v4) == 1 && (ntohl(v4.s_addr) >> 24) == 127) {
    return;
  }
  if (::inet_pton(AF_INET6, hp.host.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6)) {
    return;
  }
  if (!a.allow_remote || a.token.empty()) {
    fail(std::string(what) + ": '" + a.listen +
         "' is not a loopback address; the admin endpoint shows every connection, so a "
         "non-loopback bind needs --admin-allow-remote and --admin-token");
  }
}

std::string read_config_file(const std::string& path) {
  const std::string what = "--config: cannot read '" + path + "': ";
  // O_NONBLOCK: opening a FIFO must not wait for a writer; only regular files are read.
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fail(what + std::strerror(errno));
  }
  struct stat st {};
  std::string text;
  std::string why;
  if (::fstat(fd, &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = S_ISDIR(st.st_mode)    ? "a directory"
          : S_ISFIFO(st.st_mode) ? "a FIFO"
                                 : "not a regular file";
  } else if (static_cast<std::uint64_t>(st.st_size) > kMaxConfigBytes) {
    why = "too large (" + std::to_string(st.st_size) + " bytes; the limit is " +
          std::to_string(kMaxConfigBytes) + ")";
  } else {
    // Read at most one byte past the limit, in case the file grows while we read.
    text.resize(kMaxConfigBytes + 1);
    std::size_t got = 0;
    while (got < text.size()) {
      const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        if (n < 0) {
          why = std::strerror(errno);
        }
        break;
      }
      got += static_cast<std::size_t>(n);
    }
    text.resize(got);
    if (why.empty() && got > kMaxConfigBytes) {
      why = "too large (over " + std::to_string(kMaxConfigBytes) + " bytes)";
    }
  }
  ::close(fd);
  if (!why.empty()) {
    fail(what + why);
  }
  return text;
}

run_config build_run_config(const cli_listener& cli,
                            const std::optional<std::string>& config_path) {
  run_config out;
  timeouts base;
  if (config_path) {
    const std::string text = read_config_file(*config_path);
    out.listeners = load_yaml_listeners(text, *config_path, base, cli);
    out.admin = load_yaml_admin(text, *config_path);
  }
  if (cli.listen) {
    listener_config l;
    l.listen = parse_host_port(*cli.listen, "--listen", true);
    l.name = cli.name ? *cli.name : l.listen.text;
    check_name(l.name, "--listener-name");
    if (cli.upstream) {
      l.upstream = parse_host_port(*cli.upstream, "--upstream", false);
    }
    for (const auto& r : cli.routes) {
      const auto eq = r.find('=');
      if (eq == std::string::npos) {
        fail("--route: bad route '" + r + "' (use SNI=HOST:PORT)");
      }
      route_config rc;
      rc.sni = r.substr(0, eq);
      check_sni_pattern(rc.sni, "--route");
      rc.name = rc.sni;
      rc.upstream = parse_host_port(r.substr(eq + 1), "--route", false);
      l.routes.push_back(std::move(rc));
    }
    if (cli.access_log) {
      l.access_log = *cli.access_log;
    }
    if (cli.log_format) {
      l.access_log_format = parse_log_format(*cli.log_format, "--log-format");
    }
    l.limits = base;
    apply_timeout_flags(cli, l.limits);
    l.pp.trusted = default_trusted();
    if (cli.proxy_in) {
      l.pp.in = parse_proxy_in(*cli.proxy_in, "--proxy-protocol-in");
    }
    l.pp.strip = cli.proxy_strip;
    if (cli.proxy_out) {
      l.pp.out = parse_proxy_out(*cli.proxy_out, "--proxy-protocol-out");
    }
    if (!cli.proxy_trusted.empty()) {
      l.pp.trusted.clear();
      for (const auto& t : cli.proxy_trusted) {
        l.pp.trusted.push_back(parse_cidr(t, "--proxy-trusted"));
      }
    }
    if ((l.pp.strip || !cli.proxy_trusted.empty()) && l.pp.in == proxy_in_mode::off) {
      fail("--proxy-protocol-in: required with --proxy-protocol-strip and --proxy-trusted");
    }
    if (!is_ip_literal(l.listen.host)) {
      fail("--listen: '" + l.listen.text + "' must be an IP address and port");
    }
    l.transparent = cli.transparent;
    if (!l.upstream && l.routes.empty() && !l.transparent) {
      fail("--upstream: required (or at least one --route, or --transparent) with --listen");
    }
    out.listeners.push_back(std::move(l));
  } else {
    if (cli.proxy_in || cli.proxy_out || cli.proxy_strip || !cli.proxy_trusted.empty() ||
        cli.transparent) {
      fail(
          "--listen: required with the --proxy-protocol-* / --proxy-trusted / --transparent flags "
          "(in a --config file use the listener keys proxy_protocol_in, trusted, "
          "proxy_protocol_in_action, proxy_protocol_out, transparent)");
    }
    if (cli.upstream || !cli.routes.empty() || cli.name) {
      fail("--listen: required with --upstream, --route and --listener-name");
    }
    apply_timeout_flags(cli, base);  // validate them even when only the file uses them
  }
  if (out.listeners.empty()) {
    fail("--listen or --config: nothing to listen on");
  }
  for (const auto& spec : cli.faults) {
    (void)parse_fault(spec, "--fault");  // throws naming the bad key
    for (auto& l : out.listeners) {
      l.faults.push_back(spec);
    }
  }
  if (cli.capture_bytes && !cli.capture) {
    fail("--capture-bytes: needs --capture DIR");
  }
  if (cli.capture) {
    if (cli.capture->empty()) {
      fail("--capture: empty directory name");
    }
    const std::uint64_t bytes = cli.capture_bytes
                                    ? parse_capture_bytes(*cli.capture_bytes, "--capture-bytes")
                                    : capture_config{}.bytes_per_direction;
    // The flag covers every listener without its own `capture:` in the file.
    for (auto& l : out.listeners) {
      if (l.capture.dir.empty()) {
        l.capture.dir = *cli.capture;
        l.capture.bytes_per_direction = bytes;
      }
    }
  }
  return out;
}

}  // namespace linesman::proxy
