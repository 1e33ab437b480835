#include "proxy/record_format.hpp"

#include "proxy/config.hpp"
#include "proxy/json_writer.hpp"
#include "tls/names.hpp"

#include <cerrno>
#include <random>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

std::string tree_dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::string writer_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

std::string linesman_line(const access_record& r) {
  std::string out;
  append_linesman(out, r);
  return out;
}

access_record minimal_record() {
  access_record r;
  r.ts = std::chrono::system_clock::time_point(std::chrono::microseconds(1'700'000'000'123'456LL));
  r.id = "abc123-1";
  r.listener = "edge";
  r.client = {"127.0.0.1", 5555};
  r.local = {"127.0.0.1", 8443};
  r.close.client = side_end::proxy;
  r.stop = {stop_phase::route, stop_reason::no_route, stop_by::proxy, ""};
  r.hint = "No route matched the SNI.";
  return r;
}

// full_record: every optional part filled, with awkward strings.
access_record full_record() {
  access_record r = minimal_record();
  r.duration_us = 12'345;
  r.timing = {100, 250, 1'500, 2'000'000};
  r.bytes = {528, 528, 6564, 6564};
  r.close = {stop_by::client, side_end::fin, side_end::fin};
  r.stop = {stop_phase::stream, stop_reason::completed, stop_by::client, ""};
  r.ok = true;
  r.hint = "quote \" backslash \\ tab \t nl \n ctl \x01 del \x7f bad \xff\xc3 ok \xc3\xa9";
  r.route = "app";
  r.upstream = upstream_value{"app", "backend:443", "10.0.0.1", 443, 40000};
  r.client_first = first_flight_obs{"tls", "TLS handshake ClientHello, record version 1.0", 340};
  r.upstream_first = first_flight_obs{"tls", "", 6564};
  r.tls = tls_obs{};
  r.tls->sni = "app.example.test";
  r.tls->alpn = {"h2", "http/1.1"};
  r.tls->legacy_version = 0x0303;
  r.tls->supported_versions.push(0x0304);
  r.tls->supported_versions.push(0x0303);
  r.tls->cipher_count = 31;
  r.tls->ja3.assign("0123456789abcdef0123456789abcdef");
  r.tls->ja4.assign("t13d3112h2_e8f1e7e78f70_6bebaf5329ac");
  r.tls->ech = true;
  r.tls->hello_bytes = 340;
  r.tls->hello_records = 1;
  r.tls->hello_reads = 1;
  r.tls->complete = true;
  // The issue-14 fields: named groups (GREASE, unknown), a PQ share, ECH and the SNI's read.
  for (std::uint16_t g : {0x2a2a, 0x11ec, 0x001d, 0x0017, 0x1234}) {
    r.tls->supported_groups.push(g);
  }
  r.tls->key_share_groups.push(0x11ec);
  r.tls->key_share_groups.push(0x001d);
  r.tls->ech_config_id = 0;
  r.tls->sni_read = 2;
  r.server_tls = server_tls_obs{0x0304, 0x1302, alert_obs{tls::kAlertFatal, 40},
                                certificate_obs{"CN=a", "CN=ca", {"a.test", "10.0.0.1"}}};
  proxy_protocol_value pp;
  pp.version = 2;
  pp.command = "proxy";
  pp.source = endpoint_value{"192.0.2.1", 1234};
  pp.destination = endpoint_value{"192.0.2.2", 443};
  pp.tlvs = nlohmann::json{{"authority", "app.example.test"}, {"other", {1, 2}}};
  pp.forwarded = true;
  pp.error = "untrusted_source";
  r.proxy_protocol = std::move(pp);
  r.proxy_out = proxy_out_value{2, {"192.0.2.1", 1234}, {"10.0.0.1", 443}, "app.example.test", 52};
  r.original_dst = endpoint_value{"10.0.0.9", 443};
  r.transparent_error = "redirect_loop";
  r.capture = "abc123-1.pcapng";
  r.warnings = {"hello_many_records", "forwarding_loop"};
  r.fault = fault_value{"split_hello",
                        {{"records", "2"}, {"first", "3"}, {"probability", "0.5"}, {"sni", "*.x"}}};
  r.open_state = true;
  return r;
}

TEST(RecordFormat, GroupsAreNamedWhenWritten) {
  const std::string line = linesman_line(full_record());
  EXPECT_NE(
      line.find(R"("supported_groups":["grease","X25519MLKEM768","x25519","secp256r1","0x1234"])"),
      std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("key_share_groups":["X25519MLKEM768","x25519"])"), std::string::npos);
  EXPECT_NE(line.find(R"("pq_key_share":true)"), std::string::npos);
  EXPECT_NE(line.find(R"("sni_read":2)"), std::string::npos);
  EXPECT_NE(line.find(R"("ech_config_id":0)"), std::string::npos);
  EXPECT_EQ(line.find("groups_truncated"), std::string::npos);
  // More groups than a record keeps: the first group_list::kMax, and the flag.
  access_record many = full_record();
  for (int i = 0; i < 40; ++i) {
    many.tls->supported_groups.push(0x0100);
  }
  const std::string m = linesman_line(many);
  EXPECT_NE(m.find(R"("groups_truncated":true)"), std::string::npos) << m;
  EXPECT_EQ(many.tls->supported_groups.count, group_list::kMax);
}

// The record keeps codes (proxy/observation.hpp); each mapping names them as the record is
// written, in the exact text the record held when it kept names.
TEST(RecordFormat, TlsCodesAreNamedWhenWritten) {
  const access_record r = full_record();
  const std::string line = linesman_line(r);
  EXPECT_NE(line.find(R"("server_tls":{"alert":{"code":40,"description":"handshake_failure",)"
                      R"("level":"fatal"},"certificate":{"issuer":"CN=ca","san":["a.test",)"
                      R"("10.0.0.1"],"subject":"CN=a"},"cipher":"TLS_AES_256_GCM_SHA384",)"
                      R"("version":"1.3"})"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find(R"("ja3":"0123456789abcdef0123456789abcdef",)"
                      R"("ja4":"t13d3112h2_e8f1e7e78f70_6bebaf5329ac")"),
            std::string::npos);
  EXPECT_NE(line.find(R"("legacy_version":"1.2")"), std::string::npos);
  EXPECT_NE(line.find(R"("supported_versions":["1.3","1.2"]})"), std::string::npos);
  EXPECT_EQ(line.find("versions_truncated"), std::string::npos);

  std::string ecs;
  append_ecs(ecs, r, record_style{log_format::ecs, "node-1"});
  EXPECT_NE(ecs.find(R"("tls":{"client":{"server_name":"app.example.test",)"
                     R"("ja3":"0123456789abcdef0123456789abcdef"},"version":"1.3",)"
                     R"("version_protocol":"tls","cipher":"TLS_AES_256_GCM_SHA384",)"
                     R"("established":false})"),
            std::string::npos)
      << ecs;
  EXPECT_NE(ecs.find(R"("server_tls":{"alert":{"level":"fatal","description":"handshake_failure",)"
                     R"("code":40},)"),
            std::string::npos);
  EXPECT_NE(ecs.find(R"("legacy_version":"1.2","supported_versions":["1.3","1.2"],)"),
            std::string::npos);

  std::string otel;
  append_otel(otel, r, record_style{log_format::otel, "node-1"});
  for (
      const char* attr :
      {R"({"key":"tls.protocol.version","value":{"stringValue":"1.3"}})",
       R"({"key":"tls.cipher","value":{"stringValue":"TLS_AES_256_GCM_SHA384"}})",
       R"({"key":"tls.client.ja3","value":{"stringValue":"0123456789abcdef0123456789abcdef"}})",
       R"({"key":"linesman.server_tls.alert.description","value":{"stringValue":"handshake_failure"}})"}) {
    EXPECT_NE(otel.find(attr), std::string::npos) << attr << "\n" << otel;
  }
}

TEST(RecordFormat, MoreVersionsThanARecordKeepsAreSaidInEveryFormat) {
  access_record r = full_record();
  for (int i = 0; i < 20; ++i) {
    r.tls->supported_versions.push(static_cast<std::uint16_t>(0x7f00 + i));
  }
  ASSERT_TRUE(r.tls->versions_truncated());
  const std::string line = linesman_line(r);
  EXPECT_NE(line.find(R"("supported_versions":["1.3","1.2","0x7f00","0x7f01","0x7f02","0x7f03",)"
                      R"("0x7f04","0x7f05"],"versions_truncated":true})"),
            std::string::npos)
      << line;
  EXPECT_EQ(line, tree_dump(nlohmann::json(r)));
  std::string ecs;
  append_ecs(ecs, r, record_style{log_format::ecs, "node-1"});
  EXPECT_NE(ecs.find(R"("versions_truncated":true)"), std::string::npos) << ecs;
  std::string otel;
  append_otel(otel, r, record_style{log_format::otel, "node-1"});
  EXPECT_NE(otel.find(R"({"key":"linesman.tls.versions_truncated","value":{"boolValue":true}})"),
            std::string::npos)
      << otel;
}

TEST(RecordFormat, LinesmanMatchesTheTreeByteForByte) {
  const access_record minimal = minimal_record();
  EXPECT_EQ(linesman_line(minimal), tree_dump(nlohmann::json(minimal)));
  const access_record full = full_record();
  EXPECT_EQ(linesman_line(full), tree_dump(nlohmann::json(full)));
  access_record partial = full_record();
  partial.upstream = upstream_value{"default", "nohost.invalid:80", "", 0, 0};
  partial.tls->sni.reset();
  partial.tls->alpn.clear();
  partial.tls->ech_config_id = -1;
  partial.tls->sni_read = 0;
  partial.tls->key_share_groups = group_list{};
  partial.tls->legacy_version.reset();  // an incomplete hello: "", [], "" and ""
  partial.tls->supported_versions = version_list{};
  partial.tls->ja3 = {};
  partial.tls->ja4 = {};
  for (int i = 0; i < 40; ++i) {
    partial.tls->supported_groups.push(static_cast<std::uint16_t>(0x0100 + i));
  }
  partial.server_tls = server_tls_obs{};
  partial.proxy_protocol = proxy_protocol_value{};
  partial.proxy_out->authority.clear();
  partial.stop.errno_name = errno_name(ECONNREFUSED);
  partial.close = {std::nullopt, side_end::none, side_end::never};
  partial.open_state = false;
  EXPECT_EQ(linesman_line(partial), tree_dump(nlohmann::json(partial)));
}

// json_writer gathers text in a buffer of its own (1 KiB, proxy/json_writer.hpp) and hands it on
// when full: a hint of every length up to past that size moves each later key, string and number
// across the buffer's end, and a warning longer than the buffer goes around it.
TEST(RecordFormat, LinesmanMatchesTheTreeAcrossTheWritersBuffer) {
  access_record r = full_record();
  r.warnings.push_back(std::string(3000, 'w') + "\"\xc3\xa9\n" + std::string(1500, 'x'));
  for (std::size_t len = 0; len <= 1300; ++len) {
    r.hint = std::string(len, 'h');
    if (len > 2) {
      r.hint[len / 2] = '"';
    }
    ASSERT_EQ(linesman_line(r), tree_dump(nlohmann::json(r))) << len;
  }
}

// json_writer::word writes names from this code's own tables without escaping them: each name
// it is given must read the same escaped, for every value its table can produce.
TEST(RecordFormat, NamesWrittenAsWordsNeedNoEscape) {
  const auto plain = [](std::string_view name) {
    return writer_string(name) == "\"" + std::string(name) + "\"";
  };
  for (std::uint32_t c = 0; c <= 0xffff; ++c) {
    const auto v = static_cast<std::uint16_t>(c);
    ASSERT_TRUE(plain(tls::version_name(v).view())) << c;
    ASSERT_TRUE(plain(tls::cipher_suite_name(v).view())) << c;
    ASSERT_TRUE(plain(tls::group_name(v).view())) << c;
  }
  for (std::uint32_t c = 0; c <= 0xff; ++c) {
    const auto v = static_cast<std::uint8_t>(c);
    ASSERT_TRUE(plain(tls::alert_level_name(v).view())) << c;
    ASSERT_TRUE(plain(tls::alert_description_name(v).view())) << c;
  }
  for (int e = -1; e < 200; ++e) {
    ASSERT_TRUE(plain(errno_name(e))) << e;
  }
  for (std::size_t i = 0; i <= static_cast<std::size_t>(side_end::open); ++i) {
    ASSERT_TRUE(plain(to_string(static_cast<side_end>(i)))) << i;
  }
  for (std::size_t i = 0; i <= static_cast<std::size_t>(stop_phase::stream); ++i) {
    ASSERT_TRUE(plain(to_string(static_cast<stop_phase>(i)))) << i;
  }
  for (std::size_t i = 0; i <= static_cast<std::size_t>(stop_reason::proxy_error); ++i) {
    ASSERT_TRUE(plain(to_string(static_cast<stop_reason>(i)))) << i;
  }
  for (std::size_t i = 0; i <= static_cast<std::size_t>(stop_by::proxy); ++i) {
    ASSERT_TRUE(plain(to_string(static_cast<stop_by>(i)))) << i;
  }
}

TEST(RecordFormat, AppendRecordEndsTheLine) {
  std::string out;
  append_record(out, minimal_record(), record_style{});
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out.back(), '\n');
  EXPECT_EQ(out.find('\n'), out.size() - 1);
}

TEST(JsonWriter, StringsEscapeAsNlohmannReplaceDoes) {
  const std::vector<std::string> cases = {"",
                                          "plain",
                                          std::string("nul\0byte", 8),
                                          "\x1f\x7f",
                                          "\xe2\x82\xac",
                                          "\xf0\x9f\x98\x80",
                                          "\xc0\xaf",          // overlong
                                          "\xed\xa0\x80",      // surrogate
                                          "\xf4\x90\x80\x80",  // above U+10FFFF
                                          "\xe0\x80x",
                                          "\xe2\x82",
                                          "\xf0\x9f\x98",
                                          "a\x80\x80z",
                                          "\xc3\xc3\xa9",
                                          "\xfe\xff"};
  for (const auto& s : cases) {
    EXPECT_EQ(writer_string(s), tree_dump(nlohmann::json(s)))
        << nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  }
}

TEST(JsonWriter, RandomBytesEscapeAsNlohmannReplaceDoes) {
  std::mt19937 rng(17);
  // Bytes mostly from the interesting ranges: controls, ASCII, continuation and lead bytes.
  const std::vector<unsigned char> pool = {0x00, 0x09, 0x0a, 0x1f, '"',  '\\', 'a',  0x7f, 0x80,
                                           0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0,
                                           0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff};
  for (int n = 0; n < 20000; ++n) {
    std::string s(rng() % 12, '\0');
    for (auto& c : s) {
      c = static_cast<char>(pool[rng() % pool.size()]);
    }
    ASSERT_EQ(writer_string(s), tree_dump(nlohmann::json(s)))
        << nlohmann::json(s).dump(-1, ' ', true, nlohmann::json::error_handler_t::replace);
  }
}

// Plain runs are scanned eight bytes at a time (proxy/json_writer.cpp, plain_end): one byte to
// escape (or a near miss: ' ', '!', '#', '[', ']', DEL) at every position of runs up to 40 bytes
// long, so that it falls in each lane of a word, between words and in the tail.
TEST(JsonWriter, EscapesInLongPlainRunsAsNlohmannReplaceDoes) {
  const std::vector<std::string> specials = {
      std::string(1, '\0'), "\x1f",         " ",    "!", "\"", "#", "\\", "[", "]", "\x7f", "\x80",
      "\xc3\xa9",           "\xe2\x82\xac", "\xff", "\n"};
  for (std::size_t len = 0; len <= 40; ++len) {
    for (std::size_t at = 0; at <= len; ++at) {
      for (const std::string& sp : specials) {
        std::string s(len, 'a');
        s.insert(at, sp);
        ASSERT_EQ(writer_string(s), tree_dump(nlohmann::json(s))) << len << " " << at;
      }
    }
  }
}

TEST(JsonWriter, MillisAsNlohmannPrintsTheDouble) {
  for (std::int64_t us : {0LL, 1LL, 10LL, 100LL, 999LL, 1000LL, 1001LL, 12'345LL, 100'000LL,
                          1'500LL, 86'400'000'000LL, 123'456'789'012LL, -1'500LL}) {
    std::string out;
    append_millis(out, us);
    EXPECT_EQ(out, nlohmann::json(static_cast<double>(us) / 1000.0).dump()) << us;
  }
  std::mt19937_64 rng(13);
  for (int n = 0; n < 20000; ++n) {
    const auto us = static_cast<std::int64_t>(rng() % 1'000'000'000'000ULL);
    std::string out;
    append_millis(out, us);
    ASSERT_EQ(out, nlohmann::json(static_cast<double>(us) / 1000.0).dump()) << us;
  }
}

TEST(RecordFormat, EcsNamesAndUnits) {
  std::string out;
  append_ecs(out, full_record(), record_style{log_format::ecs, "node-1"});
  const auto j = nlohmann::json::parse(out);
  EXPECT_EQ(j["@timestamp"], "2023-11-14T22:13:20.123456Z");
  EXPECT_EQ(j["ecs"]["version"], "8.11.0");
  EXPECT_EQ(j["event"]["category"], nlohmann::json::array({"network"}));
  EXPECT_EQ(j["event"]["duration"], 12'345'000);  // nanoseconds
  EXPECT_EQ(j["event"]["reason"], "completed");
  EXPECT_EQ(j["event"]["outcome"], "unknown");  // an interim (open) record
  EXPECT_EQ(j["source"]["ip"], "127.0.0.1");
  EXPECT_EQ(j["source"]["bytes"], 528);
  EXPECT_EQ(j["destination"]["ip"], "10.0.0.1");
  EXPECT_EQ(j["destination"]["domain"], "app.example.test");
  EXPECT_EQ(j["destination"]["bytes"], 6564);
  EXPECT_EQ(j["tls"]["client"]["server_name"], "app.example.test");
  EXPECT_EQ(j["tls"]["version"], "1.3");
  EXPECT_EQ(j["tls"]["version_protocol"], "tls");
  EXPECT_FALSE(j["tls"]["established"]);  // the upstream sent an alert
  EXPECT_EQ(j["linesman"]["tls"]["ja4"], "t13d3112h2_e8f1e7e78f70_6bebaf5329ac");
  EXPECT_EQ(j["linesman"]["stop"]["phase"], "stream");
  EXPECT_EQ(j["linesman"]["timing_ms"]["upstream_first_byte"], 2000.0);
  EXPECT_EQ(j["linesman"]["proxy_protocol"]["tlvs"]["authority"], "app.example.test");
  EXPECT_EQ(j["host"]["name"], "node-1");
  EXPECT_EQ(j["linesman"]["fault"]["name"], "split_hello");
  EXPECT_EQ(j["linesman"]["fault"]["params"]["records"], "2");
  const auto lm = nlohmann::json::parse(linesman_line(full_record()));
  EXPECT_EQ(lm["fault"]["params"]["records"], 2);  // plain numbers as numbers
  EXPECT_EQ(lm["fault"]["params"]["probability"], 0.5);
  EXPECT_EQ(lm["fault"]["params"]["sni"], "*.x");
}

TEST(RecordFormat, OtlpJsonMapping) {
  access_record r = full_record();
  r.open_state = false;
  r.ok = false;
  std::string out;
  append_otel(out, r, record_style{log_format::otel, "node-1"});
  const auto j = nlohmann::json::parse(out);
  const auto& res = j["resourceLogs"][0];
  std::map<std::string, nlohmann::json> resource;
  for (const auto& a : res["resource"]["attributes"]) {
    resource[a["key"]] = a["value"];
  }
  EXPECT_EQ(resource["service.name"]["stringValue"], "linesman");
  EXPECT_EQ(resource["service.instance.id"]["stringValue"], "abc123");
  const auto& lr = res["scopeLogs"][0]["logRecords"][0];
  EXPECT_EQ(lr["timeUnixNano"], "1700000000123456000");
  EXPECT_EQ(lr["severityText"], "WARN");
  EXPECT_EQ(lr["body"]["stringValue"], nlohmann::json::parse(tree_dump(nlohmann::json(r.hint))));
  std::map<std::string, nlohmann::json> attrs;
  for (const auto& a : lr["attributes"]) {
    EXPECT_EQ(attrs.count(a["key"]), 0U) << a["key"];
    attrs[a["key"]] = a["value"];
  }
  EXPECT_EQ(attrs["network.peer.port"]["intValue"], "5555");
  EXPECT_EQ(attrs["server.address"]["stringValue"], "app.example.test");
  EXPECT_EQ(attrs["tls.protocol.version"]["stringValue"], "1.3");
  EXPECT_EQ(attrs["linesman.bytes.from_upstream"]["intValue"], "6564");
  EXPECT_EQ(attrs["linesman.duration_ms"]["doubleValue"], 12.345);
  EXPECT_EQ(attrs["linesman.tls.alpn"]["arrayValue"]["values"][1]["stringValue"], "http/1.1");
  EXPECT_EQ(attrs["linesman.stop.reason"]["stringValue"], "completed");
}

TEST(RecordFormat, ParseLogFormat) {
  EXPECT_EQ(parse_log_format("otel", "--log-format"), log_format::otel);
  EXPECT_EQ(parse_log_format("ecs", "--log-format"), log_format::ecs);
  EXPECT_EQ(parse_log_format("linesman", "--log-format"), log_format::linesman);
  try {
    (void)parse_log_format("json", "--log-format");
    FAIL() << "no config_error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("--log-format"), std::string::npos);
  }
}

}  // namespace
}  // namespace linesman::proxy
