// logs/reader: reads linesman access logs (JSON lines, tests/data/access-log.schema.json) for the
// log-reading subcommands (`linesman summary`, `linesman correlate`).
//
// Robust by design: a log is often read while the proxy still writes it, after a crash, or
// concatenated from several runs, so a line that does not parse (truncated, not JSON, missing a
// field the readers need) is recorded as a bad_line with its file and line number and skipped;
// it never aborts the run. Interim records (`"state": "open"`, docs/live-view.md) are kept apart
// from final ones so a connection is never counted twice. Unknown fields are ignored and unknown
// stop phases/reasons are kept as strings: the contract allows fields and reasons to be added.
#pragma once

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace linesman::tools {

// log_endpoint: an ip:port pair as read from a record; `ip` is normalized (see normalize_ip) so
// that the same address written two ways compares equal.
struct log_endpoint {
  std::string ip;
  int port = 0;

  bool operator==(const log_endpoint&) const = default;
};

// to_string: "ip:port", with the IPv6 address in brackets.
std::string to_string(const log_endpoint& e);

// normalize_ip: canonical text of an IP address (inet_ntop form; IPv4-mapped IPv6 becomes plain
// IPv4; surrounding brackets removed). Text that is not an IP address is returned unchanged.
std::string normalize_ip(std::string_view ip);

// access_record: the fields of one access-log line that the log readers use. Values are copies;
// the record does not refer to the line it came from.
struct access_record {
  std::string file;      // the file it was read from ("-" for stdin)
  std::size_t line = 0;  // 1-based line number in that file
  std::string id;
  std::string ts;          // as written
  std::int64_t ts_us = 0;  // ts as microseconds since the Unix epoch (UTC)
  std::string listener;
  std::optional<log_endpoint> client;        // schema-required; optional only in open records
  std::optional<log_endpoint> proxy_source;  // proxy_protocol.source, when a header was received
  bool has_tls = false;                      // a `tls` object is present
  std::optional<std::string> sni;            // tls.sni; nullopt when null or no tls object
  // pq_key_share: tls.pq_key_share of a complete hello; nullopt without one (or in logs written
  // before the field existed).
  std::optional<bool> pq_key_share;
  std::vector<std::string> warnings;  // `warnings`, in record order (non-strings skipped)
  double duration_ms = 0;
  std::optional<double> client_first_byte_ms;
  std::optional<double> hello_complete_ms;
  std::optional<double> upstream_connected_ms;
  std::optional<double> upstream_first_byte_ms;
  std::uint64_t bytes_from_client = 0;
  std::uint64_t bytes_from_upstream = 0;
  std::optional<std::string> route;
  std::string phase;   // stop.phase; may be a phase this build does not know
  std::string reason;  // stop.reason; likewise
  std::string by;      // stop.by
  std::string outcome;
  std::string hint;
  bool open = false;  // an interim record ("state": "open")
};

// bad_line: a line that could not be used, with the reason in a few words.
struct bad_line {
  std::string file;
  std::size_t line = 0;
  std::string what;
};

// format: "file:line: what", the form printed on stderr.
std::string format(const bad_line& b);

// report_bad_lines: prints "<prefix>: skipped file:line: what" for the first `limit` bad lines
// and one line with how many more there were, so a binary file does not flood the terminal.
void report_bad_lines(std::string_view prefix, const std::vector<bad_line>& bad, std::ostream& out,
                      std::size_t limit = 20);

// log_contents: everything read from one or more logs, in file order. Final records and interim
// ("open") records are kept in separate lists.
struct log_contents {
  std::vector<std::string> files;
  std::vector<access_record> records;
  std::vector<access_record> open_records;
  std::vector<bad_line> bad_lines;
  std::size_t blank_lines = 0;  // empty or whitespace-only lines, skipped without complaint
};

// parse_rfc3339_us: microseconds since the epoch for "YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm)".
// Returns nullopt for anything else (no exception).
std::optional<std::int64_t> parse_rfc3339_us(std::string_view text);

// parse_record: one line to a record. On failure returns nullopt and sets `error` to what was
// wrong (names the field). Never throws.
std::optional<access_record> parse_record(std::string_view line, std::string& error);

// read_log: reads every line of `in`, appending to `out`; `name` is used in records and bad lines.
// Never throws for content; a stream that fails mid-way ends the read (what was read is kept).
void read_log(std::istream& in, const std::string& name, log_contents& out);

// log_open_error: a log file that could not be opened or read; what() names the file.
class log_open_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// read_log_file: read_log on the file at `path`, or on standard input when `path` is "-".
// Throws log_open_error (naming the file and the OS reason) when the file cannot be read.
void read_log_file(const std::string& path, log_contents& out);

}  // namespace linesman::tools
