// log_test_util: helpers for the log-reader tests: a realistic access-log record built from the
// schema's required fields (so tests change only what they are about), and a small check of a
// record against tests/data/access-log.schema.json (types, required, enum, $ref, items) so the
// records the tests make stay valid.
#pragma once

#include "tools/logs/reader.hpp"

#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace linesman::tools::test {

// make_record: a final record of a completed TLS connection through listener `listener`, accepted
// at 2026-11-26T12:00:00Z + `at_ms`. Callers overwrite what the test is about.
inline nlohmann::json make_record(std::string id, double at_ms = 0,
                                  std::string listener = "websecure") {
  const auto whole_ms = static_cast<long long>(at_ms);
  const auto micros =
      static_cast<long long>((at_ms - static_cast<double>(whole_ms)) * 1000.0 + 0.5);
  const long long total_us = whole_ms * 1000 + micros;
  char ts[64];
  std::snprintf(ts, sizeof ts, "2026-11-26T12:%02lld:%02lld.%06lldZ", total_us / 60000000,
                (total_us / 1000000) % 60, total_us % 1000000);
  nlohmann::json j = {
      {"ts", ts},
      {"id", std::move(id)},
      {"listener", std::move(listener)},
      {"client", {{"ip", "127.0.0.1"}, {"port", 51000}}},
      {"local", {{"ip", "127.0.0.1"}, {"port", 9443}}},
      {"client_first",
       {{"protocol", "tls"}, {"summary", "TLS ClientHello SNI=app.example.com"}, {"bytes", 517}}},
      {"tls",
       {{"sni", "app.example.com"},
        {"alpn", {"h2", "http/1.1"}},
        {"legacy_version", "1.2"},
        {"supported_versions", {"1.3", "1.2"}},
        {"cipher_count", 31},
        {"hello_bytes", 512},
        {"hello_records", 1},
        {"hello_reads", 1},
        {"complete", true}}},
      {"route", "app"},
      {"upstream",
       {{"name", "traefik"},
        {"address", "127.0.0.1:8443"},
        {"ip", "127.0.0.1"},
        {"port", 8443},
        {"local_port", 40001}}},
      {"bytes",
       {{"from_client", 517}, {"to_upstream", 517}, {"from_upstream", 4096}, {"to_client", 4096}}},
      {"timing_ms",
       {{"client_first_byte", 0.1},
        {"hello_complete", 0.1},
        {"upstream_connected", 0.4},
        {"upstream_first_byte", 2.0}}},
      {"duration_ms", 20.0},
      {"close", {{"first", "client"}, {"client", "fin"}, {"upstream", "fin"}}},
      {"stop", {{"phase", "stream"}, {"reason", "completed"}, {"by", "client"}}},
      {"outcome", "ok"},
      {"hint", "The connection ended normally after both sides spoke."},
  };
  return j;
}

// set_stop: phase/reason/by and the hint, and nulls for timings a stop that early cannot have.
inline void set_stop(nlohmann::json& j, const std::string& phase, const std::string& reason,
                     const std::string& hint = "") {
  j["stop"] = {{"phase", phase}, {"reason", reason}, {"by", "upstream"}};
  j["outcome"] = phase == "stream" ? "ok" : "failed";
  j["hint"] = hint.empty() ? phase + "/" + reason + " hint" : hint;
  auto& t = j["timing_ms"];
  if (phase == "inspect" || phase == "route" || phase == "connect") {
    t["upstream_connected"] = nullptr;
    t["upstream_first_byte"] = nullptr;
    j["bytes"]["from_upstream"] = 0;
    j["bytes"]["to_client"] = 0;
    j["close"]["upstream"] = "never";
    if (phase != "connect") {
      j["route"] = nullptr;
      j["upstream"] = nullptr;
    }
  }
  if (phase == "first_reply") {
    t["upstream_first_byte"] = nullptr;
    j["bytes"]["from_upstream"] = 0;
    j["bytes"]["to_client"] = 0;
  }
}

inline nlohmann::json load_schema() {
  std::ifstream in(LINESMAN_TEST_DATA "/access-log.schema.json");
  return nlohmann::json::parse(in);
}

// check_schema: the subset of JSON Schema the access-log schema uses. Returns one message per
// violation, empty when `v` is valid.
inline void check_schema(const nlohmann::json& root, const nlohmann::json& s,
                         const nlohmann::json& v, const std::string& path,
                         std::vector<std::string>& out) {
  if (s.contains("$ref")) {
    const std::string ref = s["$ref"];  // "#/$defs/name"
    check_schema(root, root["$defs"][ref.substr(ref.rfind('/') + 1)], v, path, out);
    return;
  }
  if (s.contains("type")) {
    std::vector<std::string> types;
    if (s["type"].is_array()) {
      types = s["type"].get<std::vector<std::string>>();
    } else {
      types.push_back(s["type"]);
    }
    bool ok = false;
    for (const auto& t : types) {
      ok = ok || (t == "object" && v.is_object()) || (t == "array" && v.is_array()) ||
           (t == "string" && v.is_string()) || (t == "number" && v.is_number()) ||
           (t == "integer" && (v.is_number_integer() || v.is_number_unsigned())) ||
           (t == "boolean" && v.is_boolean()) || (t == "null" && v.is_null());
    }
    if (!ok) {
      out.push_back(path + ": wrong type");
      return;
    }
  }
  if (s.contains("enum")) {
    bool found = false;
    for (const auto& e : s["enum"]) {
      found = found || e == v;
    }
    if (!found) {
      out.push_back(path + ": not in enum: " + v.dump());
    }
  }
  if (v.is_object()) {
    for (const auto& req : s.value("required", nlohmann::json::array())) {
      if (!v.contains(req.get<std::string>())) {
        out.push_back(path + ": missing " + req.get<std::string>());
      }
    }
    if (s.contains("properties")) {
      for (const auto& [key, sub] : s["properties"].items()) {
        if (v.contains(key)) {
          check_schema(root, sub, v[key], path + "." + key, out);
        }
      }
    }
  }
  if (v.is_array() && s.contains("items")) {
    for (std::size_t i = 0; i < v.size(); ++i) {
      check_schema(root, s["items"], v[i], path + "[" + std::to_string(i) + "]", out);
    }
  }
}

inline std::vector<std::string> schema_errors(const nlohmann::json& v) {
  static const nlohmann::json schema = load_schema();
  std::vector<std::string> out;
  check_schema(schema, schema, v, "$", out);
  return out;
}

// read_records: the records as one JSONL text, read with read_log under `name`; every JSON value
// given is first checked against the schema (records the tests make must be valid).
inline log_contents read_records(const std::vector<nlohmann::json>& records,
                                 const std::string& name = "test.jsonl") {
  std::string text;
  for (const auto& r : records) {
    for (const auto& e : schema_errors(r)) {
      ADD_FAILURE() << "test record " << r.value("id", "?") << " is not schema-valid: " << e;
    }
    text += r.dump() + "\n";
  }
  std::istringstream in(text);
  log_contents out;
  read_log(in, name, out);
  return out;
}

}  // namespace linesman::tools::test
