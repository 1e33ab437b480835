#include "tools/cli/inspect.hpp"

#include "proxy/hint.hpp"
#include "proxy/inspect.hpp"
#include "proxy/observation.hpp"
#include "proxy/observe_client.hpp"
#include "tls/client_hello.hpp"
#include "tls/detect.hpp"
#include "tls/fingerprint.hpp"
#include "tls/hex.hpp"

#include <sstream>
#include <vector>

namespace linesman::tools {

namespace {

std::string hex16(std::uint16_t v) {
  std::string s = "0x";
  tls::append_hex16(s, v);
  return s;
}

}  // namespace

nlohmann::ordered_json inspect_json(const std::string& path, std::span<const std::uint8_t> bytes) {
  nlohmann::ordered_json line;
  line["file"] = path;

  std::vector<std::uint8_t> scratch(tls::kScratchLen);
  tls::client_hello hello;
  // The same bounds as `run` (proxy::kHelloLimits), so both call the same hello too large.
  const tls::hello_status status =
      tls::parse_client_hello(bytes, scratch, hello, proxy::kHelloLimits);
  line["status"] = std::string(tls::hello_status_name(status));
  nlohmann::json warnings = nlohmann::json::array();
  if (hello.too_many_records) {
    warnings.push_back(proxy::kHelloManyRecords);
  }
  if (status == tls::hello_status::complete && hello.records > 1) {
    warnings.push_back(proxy::kWarnHelloMultiRecord);
  }
  if (!warnings.empty()) {
    line["warnings"] = warnings;
  }

  const tls::detection det = tls::detect_first_flight(bytes, tls::direction::client_to_server);
  proxy::first_flight_obs first;
  first.protocol = std::string(tls::protocol_name(det.proto));
  first.summary = std::string(det.summary.view());
  first.bytes = bytes.size();
  line["client_first"] = nlohmann::json(first);

  if (status == tls::hello_status::complete || status == tls::hello_status::incomplete ||
      status == tls::hello_status::too_large) {
    line["tls"] = nlohmann::json(proxy::observe_client_hello(hello, status));
    // Read-based fields mean nothing for a file (hello_reads stays 0, as it always has).
    line["tls"].erase("sni_read");
  }
  if (status == tls::hello_status::complete) {
    nlohmann::ordered_json extra;
    extra["format"] = hello.format == tls::hello_format::sslv2 ? "sslv2" : "tls";
    extra["tls_offset"] = hello.tls_offset;
    extra["wire_bytes"] = hello.wire_len;
    extra["record_version"] = hex16(hello.record_version);
    extra["legacy_version"] = hex16(hello.legacy_version);
    nlohmann::json exts = nlohmann::json::array();
    for (const tls::extension& e : hello.extensions) {
      exts.push_back(e.type);
    }
    extra["extensions"] = exts;
    extra["sni_present"] = hello.sni_present;
    extra["grease"] = hello.grease_present;
    extra["psk"] = hello.psk_present;
    const tls::ja3_fingerprint j3 = tls::ja3(hello);
    const tls::ja4_fingerprint j4 = tls::ja4(hello);
    extra["ja3_full"] = j3.full;
    extra["ja4_r"] = j4.ja4_r;
    extra["ja4_o"] = j4.ja4_o;
    extra["ja4_ro"] = j4.ja4_ro;
    line["hello"] = extra;
  }
  return line;
}

std::string inspect_text(const nlohmann::ordered_json& line) {
  std::ostringstream out;
  const auto& first = line["client_first"];
  out << line["file"].get<std::string>() << ": " << line["status"].get<std::string>() << "\n";
  if (line.contains("capture")) {
    out << "  from: " << line["capture"]["format"].get<std::string>() << " TCP stream "
        << line["capture"]["stream"].get<std::size_t>() << ", the client's first flight\n";
  }
  out << "  first flight: " << first["protocol"].get<std::string>() << ", "
      << first["bytes"].get<std::uint64_t>() << " bytes";
  if (first.contains("summary")) {
    out << ": " << first["summary"].get<std::string>();
  }
  out << "\n";
  if (!line.contains("tls")) {
    return out.str();
  }
  const auto& t = line["tls"];
  if (!t["complete"].get<bool>()) {
    out << "  ClientHello not complete (" << t["hello_records"].get<int>()
        << " record(s) started)\n";
    return out.str();
  }
  const auto join = [](const nlohmann::ordered_json& list) {
    std::string s;
    for (const auto& v : list) {
      s += (s.empty() ? "" : ", ") + v.get<std::string>();
    }
    return s.empty() ? std::string("-") : s;
  };
  out << "  sni: " << (t["sni"].is_null() ? std::string("(none)") : t["sni"].get<std::string>())
      << "\n";
  out << "  alpn: " << join(t["alpn"]) << "\n";
  out << "  versions: legacy " << t["legacy_version"].get<std::string>() << ", supported "
      << join(t["supported_versions"]) << "\n";
  out << "  ciphers: " << t["cipher_count"].get<int>()
      << ", records: " << t["hello_records"].get<int>()
      << ", hello: " << t["hello_bytes"].get<std::uint32_t>() << " bytes"
      << (t["ech"].get<bool>() ? ", ECH or GREASE ECH" : "") << "\n";
  out << "  groups: " << join(t["supported_groups"]) << "\n";
  out << "  key shares: " << join(t["key_share_groups"])
      << (t["pq_key_share"].get<bool>() ? " (post-quantum)" : "") << "\n";
  out << "  ja3: " << t["ja3"].get<std::string>() << "\n";
  out << "  ja4: " << t["ja4"].get<std::string>() << "\n";
  return out.str();
}

}  // namespace linesman::tools
