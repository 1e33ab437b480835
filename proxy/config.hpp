// config: what `linesman run` was asked to do, from flags and/or a YAML file (control plane).
//
// Everything here may throw config_error (a std::runtime_error whose message names the flag, the
// file, the line or the key at fault); the data plane only ever sees a validated run_config.
#pragma once

#include "proxy/record_format.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::proxy {

// config_error: bad input on the control plane; what() is the whole message for the operator.
class config_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

using duration = std::chrono::milliseconds;

// parse_duration: "500ms", "5s", "2m", "1h", "1.5s" -> milliseconds. Throws config_error naming
// `what` (a flag or key) on anything else (no unit, negative, garbage, overflow).
duration parse_duration(std::string_view text, std::string_view what);

// host_port: an address as written, "127.0.0.1:80", "[::1]:8443", "db.example:5432".
struct host_port {
  std::string host;  // without brackets
  std::uint16_t port = 0;
  std::string text;  // as configured (for the record's upstream.address)
};

// parse_host_port: splits HOST:PORT ([v6]:PORT for IPv6). `allow_zero_port` for listen addresses.
// Throws config_error naming `what`.
host_port parse_host_port(std::string_view text, std::string_view what, bool allow_zero_port);

struct timeouts {
  duration peek{std::chrono::seconds(10)};
  duration connect{std::chrono::seconds(10)};
  duration idle{std::chrono::seconds(300)};
  duration drain{std::chrono::seconds(10)};
};

// route_config: one SNI route. `sni` is a host name or "*.suffix" (normalized by route_table).
struct route_config {
  std::string name;
  std::string sni;
  host_port upstream;
  std::optional<int> proxy_out;  // YAML proxy_protocol_out: overrides the listener's (0 = off)
};

// proxy_in_mode: whether a listener expects a PROXY protocol header before the client's bytes.
// auto accepts v1, v2 or none; v1/v2 require that version; off never looks for one.
enum class proxy_in_mode : std::uint8_t { off, auto_detect, v1, v2 };

// cidr: an IPv4 or IPv6 network (address bytes in network order, 4 or 16 used).
struct cidr {
  std::array<std::uint8_t, 16> addr{};
  std::uint8_t len = 4;  // 4 or 16
  std::uint8_t prefix = 0;
  std::string text;  // as configured
};

// parse_cidr: "10.0.0.0/8", "::1/128", or a bare address (a /32 or /128). Throws config_error
// naming `what`.
cidr parse_cidr(std::string_view text, std::string_view what);

// cidr_contains: true when the address bytes (4 or 16; an IPv4-mapped IPv6 address counts as
// its IPv4 address) are inside `net`.
bool cidr_contains(const cidr& net, std::span<const std::uint8_t> addr);

// proxy_protocol_config: a listener's PROXY protocol settings. Trusted defaults to loopback only
// (127.0.0.0/8 and ::1): like Traefik's proxyProtocol.trustedIPs a header is believed only from
// listed peers, and an empty list would trust no one.
struct proxy_protocol_config {
  proxy_in_mode in = proxy_in_mode::off;
  bool strip = false;  // drop the received header instead of forwarding it unchanged
  int out = 0;         // 0 none, 1 or 2: write this version upstream before any client byte
  std::vector<cidr> trusted;
};

// capture_config: `--capture DIR [--capture-bytes N|all]` or a listener's YAML `capture:` map.
// Off (dir empty) by default: plaintext first flights may hold credentials.
struct capture_config {
  std::string dir;                                // empty: no capture
  std::uint64_t bytes_per_direction = 64 * 1024;  // ~0 for `all`
  std::uint64_t max_total_bytes = std::uint64_t{1} << 30;
};

struct listener_config {
  std::string name;
  host_port listen;                   // host is an IP literal
  std::optional<host_port> upstream;  // the default route
  std::vector<route_config> routes;
  std::string access_log = "-";  // "-" = stdout
  // log_format: the access log's field mapping (--log-format, YAML `log_format`); listeners
  // sharing one access_log file must agree on it.
  log_format access_log_format = log_format::linesman;
  timeouts limits;
  proxy_protocol_config pp;
  // transparent: the upstream is each connection's original destination (SO_ORIGINAL_DST after
  // an nftables/iptables REDIRECT); routes still apply, `upstream` is then not needed.
  bool transparent = false;
  capture_config capture;
  // faults: injected faults (YAML `faults:` list, --fault), parsed (proxy/fault.hpp); text kept
  // here so config stays free of the fault types.
  std::vector<std::string> faults;
};

// admin_config: the read-only admin endpoint (proxy/admin.hpp); off when `listen` is empty.
struct admin_config {
  std::string listen;  // HOST:PORT, an IP literal; port 0 = any
  std::string token;   // Bearer token; empty = no authentication
  bool allow_remote = false;
  bool faults = false;  // --admin-faults: GET/POST/DELETE /api/faults
  // ring_records: --admin-records, the recent final records the admin page keeps (at most; the
  // ring's byte bound, proxy/record_ring.hpp, applies too).
  std::size_t ring_records = 10000;
};

struct run_config {
  std::vector<listener_config> listeners;
  admin_config admin;
  duration log_open_every{0};       // 0 = no interim "state": "open" records
  unsigned threads = 0;             // 0 = hardware_concurrency
  std::size_t max_connections = 0;  // 0 = derived from RLIMIT_NOFILE
  bool no_splice = false;
  std::string log_level = "info";
  std::optional<std::uint64_t> fault_seed;  // --fault-seed; random when unset
};

// cli_listener: the flags of `linesman run` that describe one listener; optionals are "not given".
struct cli_listener {
  std::optional<std::string> listen;
  std::optional<std::string> upstream;
  std::vector<std::string> routes;  // SNI=HOST:PORT
  std::optional<std::string> access_log;
  // log_format: --log-format; also the default of YAML listeners that set no `log_format`.
  std::optional<std::string> log_format;
  std::optional<std::string> name;
  std::optional<std::string> peek, connect, idle, drain;  // durations as written
  std::optional<std::string> proxy_in;                    // off|auto|v1|v2
  bool proxy_strip = false;
  std::optional<std::string> proxy_out;    // v1|v2
  std::vector<std::string> proxy_trusted;  // CIDRs
  bool transparent = false;
  std::optional<std::string> capture;        // --capture DIR
  std::optional<std::string> capture_bytes;  // --capture-bytes N|all
  std::vector<std::string> faults;           // --fault SPEC (every listener)
};

// parse_capture_bytes: "all" (no bound) or a byte count >= 1, optionally with a k/K (KiB) or
// m/M (MiB) suffix. Throws config_error naming `what`.
std::uint64_t parse_capture_bytes(std::string_view text, std::string_view what);

// utf8_char_len: the length (1-4) of the valid UTF-8 character `s` starts with (no overlong
// forms, no surrogates, nothing above U+10FFFF); 0 when it does not start with one.
std::size_t utf8_char_len(std::string_view s);

// check_text: whether `s` is text fit for JSON, Prometheus labels and a terminal: valid UTF-8
// without control characters (names, admin query values).
enum class text_fault : std::uint8_t { none, control, not_utf8 };
text_fault check_text(std::string_view s);

// kMaxConfigBytes: the largest --config file read (real files are a few KiB).
inline constexpr std::size_t kMaxConfigBytes = 1024 * 1024;

// read_config_file: the text of the --config file `path`. Throws config_error ("--config: cannot
// read 'PATH': ...") when it is not a regular file (a directory, a FIFO, a device such as
// /dev/zero), cannot be read, or is larger than kMaxConfigBytes. Never blocks on a FIFO.
std::string read_config_file(const std::string& path);

// build_run_config: validates the flags and, when `config_path` is set, the YAML file, into one
// run_config. Precedence: built-in defaults < YAML `defaults` < timeout flags < a YAML listener's
// own `timeouts`. The flag listener (when --listen is given) is added after the file's listeners.
// Throws config_error.
run_config build_run_config(const cli_listener& cli, const std::optional<std::string>& config_path);

// load_yaml_admin: the optional top-level `admin: {listen, token, allow_remote}` of a YAML config
// text (empty admin_config when absent). Throws config_error naming the file, line and key.
admin_config load_yaml_admin(const std::string& text, const std::string& file);

// check_admin: refuses a non-loopback admin address unless allow_remote is set with a token.
// Throws config_error naming `what` (the flag or key).
void check_admin(const admin_config& a, std::string_view what);

// load_yaml_listeners: parses a YAML config text (for tests; `file` names it in messages).
// Returns the listeners with `base` as the starting timeouts (overridden by `defaults`).
std::vector<listener_config> load_yaml_listeners(const std::string& text, const std::string& file,
                                                 const timeouts& base,
                                                 const cli_listener& overrides);

}  // namespace linesman::proxy
