// record_format: the access-log record written straight into the log buffer through json_writer,
// in one of three field mappings (docs/log-formats.md has the table):
//   linesman  the schema of tests/data/access-log.schema.json, byte for byte what
//             to_json(nlohmann::json&, const access_record&) dumps (keys sorted, nulls kept);
//   ecs       one Elastic Common Schema document per line;
//   otel      one OTLP JSON `resourceLogs` document per line, as the OpenTelemetry Collector's
//             otlpjsonfile receiver reads it.
// Runs on the log sink's thread; never throws for a record's content (invalid UTF-8 is replaced).
#pragma once

#include "proxy/access_record.hpp"

#include <string>
#include <string_view>

namespace linesman::proxy {

enum class log_format : std::uint8_t { linesman, ecs, otel };

std::string_view to_string(log_format f);

// parse_log_format: "linesman", "ecs" or "otel". Throws config_error naming `what` (the flag or
// YAML key) otherwise.
log_format parse_log_format(std::string_view text, std::string_view what);

// record_style: what a sink needs besides the record: the mapping and, for ecs/otel, the host
// name (host.name, observer.hostname).
struct record_style {
  log_format format = log_format::linesman;
  std::string host_name;
};

// local_host_name: gethostname(2), or "localhost" when it fails.
std::string local_host_name();

// append_record: `r` as one line (ending in '\n') in `style`, appended to `out`.
void append_record(std::string& out, const access_record& r, const record_style& style);

// The three mappings, each appending one JSON document without the newline.
void append_linesman(std::string& out, const access_record& r);
void append_ecs(std::string& out, const access_record& r, const record_style& style);
void append_otel(std::string& out, const access_record& r, const record_style& style);

}  // namespace linesman::proxy
