// hint: the record's `hint` sentence, refined from default_hint with what the record shows.
#pragma once

#include "proxy/access_record.hpp"

#include <array>
#include <string>
#include <string_view>

namespace linesman::proxy {

// hint_for: default_hint(stop.phase, stop.reason) plus the facts the record holds that help a
// Traefik user (the SNI asked for, the upstream's answer, the alert name). Never throws on any
// record content; the result is one line.
std::string hint_for(const access_record& r);

// Warnings derived from a finished (or interim) record by add_record_warnings. They can sit on a
// record whatever its stop and outcome; stop and outcome keep their meaning.
inline constexpr const char* kWarnDefaultCertificate = "default_certificate";
inline constexpr const char* kWarnSniAfterFirstSegment = "sni_after_first_segment";
inline constexpr const char* kWarnEchOuterNameOnly = "ech_outer_name_only";
inline constexpr const char* kWarnProxyV4Mapped = "proxy_v4_mapped";
inline constexpr const char* kWarnHelloMultiRecord = "hello_multi_record";

// kRecordWarnings: every warning a record can carry (the ones above, hello_many_records from
// proxy/inspect.hpp, forwarding_loop from the loop guard), in the order metrics list them.
inline constexpr std::array<std::string_view, 7> kRecordWarnings = {
    "default_certificate", "sni_after_first_segment", "ech_outer_name_only", "proxy_v4_mapped",
    "hello_multi_record",  "hello_many_records",      "forwarding_loop"};

// add_record_warnings: adds to r.warnings (each at most once) what the record shows:
//   default_certificate      a TLS 1.2 certificate that is Traefik's default one, or whose names
//                            do not cover the SNI;
//   sni_after_first_segment  the server_name extension completed in read 2 or later;
//   hello_multi_record       the hello spans more than one TLS record;
//   ech_outer_name_only      the hello carried ECH (or GREASE ECH) with an SNI and the connection
//                            failed or met a default certificate: a router saw only that outer
//                            name;
//   proxy_v4_mapped          a PROXY header received or sent carries an IPv4-mapped IPv6 address.
// Call it before hint_for, which reads them. Never throws on record content.
void add_record_warnings(access_record& r);

// has_warning: whether r.warnings holds `name`.
bool has_warning(const access_record& r, std::string_view name);

}  // namespace linesman::proxy
