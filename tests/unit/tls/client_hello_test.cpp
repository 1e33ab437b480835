// parse_client_hello on hand-built hellos: fields, record splitting, limits, malformed inputs,
// SSLv2 format, PostgreSQL SSLRequest, and the JA3/JA4 rules the corpus does not exercise.
#include "tls/client_hello.hpp"

#include "hello_builder.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace linesman::tls {
namespace {

using testing::append;
using testing::bytes;
using testing::hello_builder;

struct parsed {
  hello_status status = hello_status::malformed;
  client_hello hello;
  bytes input;  // keeps the hello's views valid
  bytes scratch = bytes(kScratchLen);
};

// parse: an exact-size copy of `in`, so sanitizers catch over-reads.
std::unique_ptr<parsed> parse(const bytes& in, const hello_limits& limits = {},
                              std::size_t scratch_len = kScratchLen) {
  auto p = std::make_unique<parsed>();
  p->input = in;
  p->scratch.resize(scratch_len);
  p->status = parse_client_hello(p->input, p->scratch, p->hello, limits);
  return p;
}

std::string name_of(hello_status s) { return std::string(hello_status_name(s)); }

std::string str(std::span<const std::uint8_t> b) { return {b.begin(), b.end()}; }

template <typename List>
std::vector<typename List::iterator::value_type> collect(const List& l) {
  return {l.begin(), l.end()};
}

// fields: what must not change when the same hello is framed or delivered differently.
std::string fields(const client_hello& h) {
  std::string s = str(h.sni) + "|" + std::to_string(h.legacy_version) + "|";
  for (auto a : h.alpn) {
    s += str(a) + ",";
  }
  for (std::uint16_t v : h.supported_versions) {
    s += std::to_string(v) + ",";
  }
  for (const extension& e : h.extensions) {
    s += std::to_string(e.type) + ":" + std::to_string(e.body.size()) + ",";
  }
  for (const key_share_entry& k : h.key_shares) {
    s += std::to_string(k.group) + ",";
  }
  s += "|" + std::to_string(h.handshake_len) + "|" + ja3(h).full + "|" + ja4(h).ja4_ro;
  return s;
}

TEST(ClientHello, ParsesEveryField) {
  const auto p = parse(testing::typical().wire());
  ASSERT_EQ(name_of(p->status), "complete");
  const client_hello& h = p->hello;
  EXPECT_EQ(h.format, hello_format::tls);
  EXPECT_EQ(h.record_version, 0x0301);
  EXPECT_EQ(h.legacy_version, 0x0303);
  EXPECT_EQ(h.session_id.size(), 32U);
  EXPECT_EQ(h.random.size(), 32U);
  EXPECT_EQ(collect(h.cipher_suites),
            (std::vector<std::uint16_t>{0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f}));
  EXPECT_EQ(h.compression_methods.size(), 1U);
  EXPECT_TRUE(h.sni_present);
  EXPECT_EQ(str(h.sni), "www.example.test");
  EXPECT_TRUE(h.alpn_present);
  std::vector<std::string> alpn;
  for (auto a : h.alpn) {
    alpn.push_back(str(a));
  }
  EXPECT_EQ(alpn, (std::vector<std::string>{"h2", "http/1.1"}));
  EXPECT_EQ(collect(h.supported_versions), (std::vector<std::uint16_t>{0x3a3a, 0x0304, 0x0303}));
  EXPECT_EQ(collect(h.supported_groups), (std::vector<std::uint16_t>{0x2a2a, 0x001d, 0x0017}));
  EXPECT_EQ(collect(h.signature_algorithms), (std::vector<std::uint16_t>{0x0403, 0x0804, 0x0401}));
  EXPECT_EQ(h.ec_point_formats.size(), 1U);
  std::vector<std::uint16_t> groups;
  for (const key_share_entry& k : h.key_shares) {
    groups.push_back(k.group);
    EXPECT_EQ(k.key.size(), 32U);
  }
  EXPECT_EQ(groups, (std::vector<std::uint16_t>{0x2a2a, 0x001d}));
  EXPECT_TRUE(h.ech_present);
  EXPECT_FALSE(h.psk_present);
  EXPECT_TRUE(h.grease_present);
  EXPECT_EQ(h.extensions.size(), 11U);
  EXPECT_EQ(h.records, 1);
  EXPECT_EQ(h.handshake_len, testing::typical().handshake().size());
  EXPECT_EQ(h.wire_len, p->input.size());
  // In one record the views point into the input, not the scratch buffer.
  EXPECT_TRUE(h.sni.data() >= p->input.data() && h.sni.data() < p->input.data() + p->input.size());
}

TEST(ClientHello, SplitAcrossTwoRecordsAtEveryPointParsesTheSame) {
  const hello_builder b = testing::typical();
  const auto whole = parse(b.wire());
  ASSERT_EQ(name_of(whole->status), "complete");
  const std::string want = fields(whole->hello);
  const std::size_t len = b.handshake().size();
  for (std::size_t first = 1; first < len; ++first) {
    const auto p = parse(b.wire({first}));
    ASSERT_EQ(name_of(p->status), "complete") << first;
    EXPECT_EQ(p->hello.records, 2);
    EXPECT_EQ(p->hello.wire_len, len + 10);
    EXPECT_EQ(fields(p->hello), want) << first;
    // Spanning records, the views point into scratch.
    EXPECT_TRUE(p->hello.random.data() >= p->scratch.data() &&
                p->hello.random.data() < p->scratch.data() + p->scratch.size());
  }
}

// Issue 20: a record bound, apart from the size bound. Within it a hello in many records is
// complete; past it (counted on the records started so far) it is too_large with
// too_many_records set, and a large hello in few records is not affected.
TEST(ClientHello, MaxRecordsBoundsTheRecordsNotTheSize) {
  const hello_builder b = testing::typical();
  const std::size_t len = b.handshake().size();
  hello_limits limits;
  limits.max_records = 64;
  const auto few = parse(b.wire(std::vector<std::size_t>(63, 1)), limits);
  ASSERT_EQ(name_of(few->status), "complete");
  EXPECT_EQ(few->hello.records, 64);
  EXPECT_FALSE(few->hello.too_many_records);
  const bytes wire = b.wire(std::vector<std::size_t>(len, 1));
  const auto many = parse(wire, limits);
  EXPECT_EQ(name_of(many->status), "too_large");
  EXPECT_TRUE(many->hello.too_many_records);
  // 65 records started: too_large already, before the hello is complete.
  const auto prefix = parse(bytes(wire.begin(), wire.begin() + 65 * 6), limits);
  EXPECT_EQ(name_of(prefix->status), "too_large");
  EXPECT_TRUE(prefix->hello.too_many_records);
  // 64 records started and incomplete: still incomplete.
  const auto under = parse(bytes(wire.begin(), wire.begin() + 64 * 6), limits);
  EXPECT_EQ(name_of(under->status), "incomplete");
  EXPECT_FALSE(under->hello.too_many_records);
}

TEST(ClientHello, OneByteRecordsParseTheSame) {
  const hello_builder b = testing::typical();
  const std::string want = fields(parse(b.wire())->hello);
  const std::size_t len = b.handshake().size();
  const auto p = parse(b.wire(std::vector<std::size_t>(len, 1)));
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_EQ(p->hello.records, static_cast<int>(len));
  EXPECT_EQ(fields(p->hello), want);
  // And every proper prefix of that is incomplete.
  const bytes wire = b.wire(std::vector<std::size_t>(len, 1));
  for (std::size_t k = 0; k < wire.size(); ++k) {
    ASSERT_EQ(name_of(parse(bytes(wire.begin(), wire.begin() + static_cast<long>(k)))->status),
              "incomplete")
        << k;
  }
}

TEST(ClientHello, BytesAfterTheHelloAreLeftAlone) {
  bytes wire = testing::typical().wire();
  const std::size_t hello_len = wire.size();
  wire.insert(wire.end(), {0x17, 0x03, 0x03, 0x00, 0x01, 0x00});  // early data record
  const auto p = parse(wire);
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_EQ(p->hello.wire_len, hello_len);
}

TEST(ClientHello, ScratchTooSmallForASplitHelloIsTooLarge) {
  const hello_builder b = testing::typical();
  EXPECT_EQ(name_of(parse(b.wire({100}), {}, 50)->status), "too_large");
  // Decided as soon as the first record ends, without waiting for the rest.
  const bytes wire = b.wire({100});
  EXPECT_EQ(name_of(parse(bytes(wire.begin(), wire.begin() + 105), {}, 50)->status), "too_large");
  // A hello in one record needs no scratch at all.
  EXPECT_EQ(name_of(parse(b.wire(), {}, 0)->status), "complete");
}

TEST(ClientHello, LimitGivesTooLargeFromTheHeaderAlone) {
  hello_builder b = testing::typical();
  b.ext(0x0015, bytes(2000, 0));  // padding
  const bytes wire = b.wire();
  hello_limits small;
  small.max_handshake_len = 1000;
  EXPECT_EQ(name_of(parse(wire, small)->status), "too_large");
  // Record header plus handshake header are enough to decide.
  EXPECT_EQ(name_of(parse(bytes(wire.begin(), wire.begin() + 9), small)->status), "too_large");
  EXPECT_EQ(name_of(parse(bytes(wire.begin(), wire.begin() + 8), small)->status), "incomplete");
}

TEST(ClientHello, DefaultLimitIsSixteenKibOfHandshake) {
  hello_builder b = testing::typical();
  const std::size_t base = b.handshake().size();
  b.ext(0x0015, bytes(16384 - base - 4, 0));  // exactly 16384 with the padding header
  ASSERT_EQ(b.handshake().size(), 16384U);
  EXPECT_EQ(name_of(parse(b.wire())->status), "complete");
  b.extensions.back().second.push_back(0);
  EXPECT_EQ(name_of(parse(b.wire({16000}))->status), "too_large");
}

TEST(ClientHello, RecordFramingViolationsAreMalformed) {
  const bytes hs = testing::typical().handshake();
  // Record longer than 2^14 (strict, as BoringSSL: record_overflow).
  bytes big = hello_builder::frame(hs);
  big[3] = 0x40;
  big[4] = 0x01;
  EXPECT_EQ(name_of(parse(big)->status), "malformed");
  // Zero-length handshake record.
  EXPECT_EQ(name_of(parse({22, 3, 1, 0, 0})->status), "malformed");
  // An alert record between two fragments of the hello.
  bytes two = hello_builder::frame(hs, {50});
  bytes interleaved(two.begin(), two.begin() + 55);
  append(interleaved, {21, 3, 3, 0, 2, 2, 40});
  interleaved.insert(interleaved.end(), two.begin() + 55, two.end());
  EXPECT_EQ(name_of(parse(interleaved)->status), "malformed");
  // A second record with a non-TLS version.
  two[55 + 1] = 0x02;
  EXPECT_EQ(name_of(parse(two)->status), "malformed");
  // A handshake message that is not a ClientHello.
  EXPECT_EQ(
      name_of(parse(hello_builder::frame(hello_builder::handshake_of(bytes(40, 0), 2)))->status),
      "malformed");
}

TEST(ClientHello, FirstBytesDecideNotTls) {
  EXPECT_EQ(name_of(parse({})->status), "incomplete");
  EXPECT_EQ(name_of(parse({22})->status), "incomplete");
  EXPECT_EQ(name_of(parse({22, 2})->status), "not_tls");
  EXPECT_EQ(name_of(parse({21})->status), "incomplete");
  EXPECT_EQ(name_of(parse({21, 3})->status), "malformed");  // TLS, but an alert first
  EXPECT_EQ(name_of(parse({23, 3, 3})->status), "malformed");
  EXPECT_EQ(name_of(parse(testing::text("GET / HTTP/1.1\r\n"))->status), "not_tls");
  EXPECT_EQ(name_of(parse(testing::text("SSH-2.0-OpenSSH_9.2\r\n"))->status), "not_tls");
  EXPECT_EQ(name_of(parse(testing::text("*1\r\n$4\r\nPING\r\n"))->status), "not_tls");
  EXPECT_EQ(name_of(parse({0x80})->status), "incomplete");
  EXPECT_EQ(name_of(parse({0x80, 0x20, 0x02})->status), "not_tls");  // SSLv2 but not a hello
}

TEST(ClientHello, PostgresSslRequestIsSkippedAndReported) {
  const bytes ssl_request = {0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f};
  bytes in = ssl_request;
  append(in, testing::typical().wire());
  const auto p = parse(in);
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_TRUE(p->hello.postgres_ssl_request);
  EXPECT_EQ(p->hello.tls_offset, 8U);
  EXPECT_EQ(p->hello.wire_len, in.size() - 8);
  EXPECT_EQ(str(p->hello.sni), "www.example.test");
  for (std::size_t k = 0; k <= ssl_request.size(); ++k) {
    EXPECT_EQ(name_of(parse(bytes(in.begin(), in.begin() + static_cast<long>(k)))->status),
              "incomplete")
        << k;
  }
  // GSSENCRequest (code 80877104) and a StartupMessage are not TLS.
  EXPECT_EQ(name_of(parse({0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30})->status), "not_tls");
  bytes plain = ssl_request;
  append(plain, testing::text("GET /"));
  EXPECT_EQ(name_of(parse(plain)->status), "not_tls");
}

bytes sslv2_hello(std::uint16_t version, const bytes& specs, std::size_t challenge_len,
                  std::uint8_t msg_type = 1) {
  bytes msg;
  testing::put_u8(msg, msg_type);
  testing::put_u16(msg, version);
  testing::put_u16(msg, specs.size());
  testing::put_u16(msg, 0);
  testing::put_u16(msg, challenge_len);
  append(msg, specs);
  append(msg, bytes(challenge_len, 0x33));
  bytes out;
  testing::put_u16(out, 0x8000U | msg.size());
  append(out, msg);
  return out;
}

TEST(ClientHello, Sslv2FormatHello) {
  const bytes specs = {0x00, 0x00, 0x2f, 0x00, 0x00, 0x35, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff};
  const bytes in = sslv2_hello(0x0301, specs, 16);
  const auto p = parse(in);
  ASSERT_EQ(name_of(p->status), "complete");
  const client_hello& h = p->hello;
  EXPECT_EQ(h.format, hello_format::sslv2);
  EXPECT_EQ(h.legacy_version, 0x0301);
  EXPECT_EQ(h.record_version, 0x0002);
  EXPECT_EQ(collect(h.sslv2_cipher_specs),
            (std::vector<std::uint32_t>{0x00002f, 0x000035, 0x010080, 0x0000ff}));
  EXPECT_EQ(h.random.size(), 16U);
  EXPECT_EQ(h.wire_len, in.size());
  EXPECT_EQ(h.records, 1);
  EXPECT_FALSE(h.extensions_present);
  EXPECT_EQ(ja3(h).full, "769,47-53-255,,,");
  EXPECT_EQ(ja4(h).ja4_r.substr(0, 11), "t10i030000_");
  for (std::size_t k = 0; k < in.size(); ++k) {
    ASSERT_EQ(name_of(parse(bytes(in.begin(), in.begin() + static_cast<long>(k)))->status),
              "incomplete")
        << k;
  }
  EXPECT_EQ(name_of(parse(sslv2_hello(0x0301, specs, 15))->status), "malformed");
  EXPECT_EQ(name_of(parse(sslv2_hello(0x0301, {0, 0, 0x2f, 0}, 16))->status), "malformed");
  EXPECT_EQ(name_of(parse(sslv2_hello(0x0301, {}, 16))->status), "malformed");
  EXPECT_EQ(name_of(parse(sslv2_hello(0x0701, specs, 16))->status), "not_tls");
  EXPECT_EQ(name_of(parse(sslv2_hello(0x0002, specs, 32))->status), "complete");
}

// malformed_with: the typical hello with one extension replaced (or added) by `type`/`body`.
hello_status with_extension(std::uint16_t type, const bytes& body) {
  hello_builder b = testing::typical();
  auto it = std::ranges::find_if(b.extensions, [&](const auto& e) { return e.first == type; });
  if (it != b.extensions.end()) {
    it->second = body;
  } else {
    b.ext(type, body);
  }
  return parse(b.wire())->status;
}

TEST(ClientHello, StrictExtensionGrammar) {
  using testing::u16_prefixed;
  using testing::u8_prefixed;
  // SNI: trailing byte inside the body, NUL in the name, empty name, two host_names, empty list.
  bytes sni = testing::sni_body({"a.test"});
  sni.push_back(0);
  EXPECT_EQ(name_of(with_extension(0x0000, sni)), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0000, testing::sni_body({std::string("a\0b", 3)}))),
            "malformed");
  EXPECT_EQ(name_of(with_extension(0x0000, testing::sni_body({""}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0000, testing::sni_body({"a.test", "b.test"}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0000, u16_prefixed({}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0000, {})), "malformed");
  // ALPN: empty list, empty name, trailing byte.
  EXPECT_EQ(name_of(with_extension(0x0010, u16_prefixed({}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0010, u16_prefixed({0}))), "malformed");
  bytes alpn = testing::alpn_body({"h2"});
  alpn.push_back(1);
  EXPECT_EQ(name_of(with_extension(0x0010, alpn)), "malformed");
  // supported_versions: odd length; signature_algorithms: empty; groups: overrun.
  EXPECT_EQ(name_of(with_extension(0x002b, u8_prefixed({3, 4, 3}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x000d, u16_prefixed({}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x000a, {0, 8, 0, 0x1d})), "malformed");
  EXPECT_EQ(name_of(with_extension(0x000b, u8_prefixed({}))), "malformed");
  // key_share: an entry with an empty key; an empty share list is fine (HelloRetryRequest path).
  EXPECT_EQ(name_of(with_extension(0x0033, u16_prefixed({0, 0x1d, 0, 0}))), "malformed");
  EXPECT_EQ(name_of(with_extension(0x0033, u16_prefixed({}))), "complete");
  // An unknown name_type in server_name is skipped, not taken as the host name.
  bytes other;
  testing::put_u8(other, 7);
  append(other, u16_prefixed(testing::text("x")));
  testing::put_u8(other, 0);
  append(other, u16_prefixed(testing::text("b.test")));
  hello_builder b = testing::typical();
  b.extensions[1].second = u16_prefixed(other);
  const auto p = parse(b.wire());
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_EQ(str(p->hello.sni), "b.test");
  EXPECT_EQ(p->hello.server_names.size(), 2U);
}

TEST(ClientHello, DuplicatesAndPskPlacement) {
  hello_builder dup = testing::typical();
  dup.ext(0x0000, testing::sni_body({"evil.test"}));
  EXPECT_EQ(name_of(parse(dup.wire())->status), "malformed");
  // Past the pairwise limit the bitset path finds them too.
  hello_builder many = testing::typical();
  for (std::uint16_t t = 0x1000; t < 0x1040; ++t) {
    many.ext(t, {});
  }
  EXPECT_EQ(name_of(parse(many.wire())->status), "complete");
  many.ext(0x1020, {});
  EXPECT_EQ(name_of(parse(many.wire())->status), "malformed");
  // Many types in one filter bucket: the finder switches to its exact set and still finds the
  // repeat (and accepts the distinct ones).
  hello_builder colliding = testing::typical();
  std::vector<std::uint16_t> same_bucket;
  for (std::uint32_t t = 0x2000; t < 0x10000 && same_bucket.size() < 40; ++t) {
    if (detail::extension_bucket(static_cast<std::uint16_t>(t)) == 0x55) {
      same_bucket.push_back(static_cast<std::uint16_t>(t));
    }
  }
  ASSERT_EQ(same_bucket.size(), 40U);
  for (std::uint16_t t : same_bucket) {
    colliding.ext(t, {});
  }
  EXPECT_EQ(name_of(parse(colliding.wire())->status), "complete");
  colliding.ext(same_bucket[3], {});
  EXPECT_EQ(name_of(parse(colliding.wire())->status), "malformed");
  colliding.extensions.pop_back();
  colliding.ext(0x000a, {});  // a repeat of an early, non-colliding type
  EXPECT_EQ(name_of(parse(colliding.wire())->status), "malformed");
  // pre_shared_key must be last.
  hello_builder psk = testing::typical();
  psk.ext(0x0029, bytes(10, 1));
  const auto ok = parse(psk.wire());
  ASSERT_EQ(name_of(ok->status), "complete");
  EXPECT_TRUE(ok->hello.psk_present);
  psk.ext(0x0017 + 1, {});
  EXPECT_EQ(name_of(parse(psk.wire())->status), "malformed");
}

TEST(ClientHello, BodyGrammarViolations) {
  hello_builder b = testing::typical();
  b.ciphers.clear();
  EXPECT_EQ(name_of(parse(b.wire())->status), "malformed");
  b = testing::typical();
  b.compression.clear();
  EXPECT_EQ(name_of(parse(b.wire())->status), "malformed");
  b = testing::typical();
  b.session_id = bytes(33, 1);
  EXPECT_EQ(name_of(parse(b.wire())->status), "malformed");
  // Odd cipher_suites length: patch the length byte of a valid hello.
  bytes body = testing::typical().body();
  body[2 + 32 + 1 + 32 + 1] += 1;
  EXPECT_EQ(name_of(parse(hello_builder::frame(hello_builder::handshake_of(body)))->status),
            "malformed");
  // Trailing bytes after the extensions.
  body = testing::typical().body();
  body.push_back(0);
  EXPECT_EQ(name_of(parse(hello_builder::frame(hello_builder::handshake_of(body)))->status),
            "malformed");
  // Truncated body with a consistent handshake header: the grammar runs out.
  body = testing::typical().body();
  for (std::size_t cut : {0UL, 1UL, 20UL, 34UL, 35UL, 70UL, body.size() - 1}) {
    const bytes part(body.begin(), body.begin() + static_cast<long>(cut));
    EXPECT_EQ(name_of(parse(hello_builder::frame(hello_builder::handshake_of(part)))->status),
              "malformed")
        << cut;
  }
  // A handshake header announcing more than the records hold waits for more records.
  bytes hs = testing::typical().handshake();
  hs[3] += 10;
  EXPECT_EQ(name_of(parse(hello_builder::frame(hs))->status), "incomplete");
}

TEST(ClientHello, OptionalExtensionsBlock) {
  hello_builder none = testing::typical();
  none.with_extensions = false;
  const auto p = parse(none.wire());
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_FALSE(p->hello.extensions_present);
  EXPECT_FALSE(p->hello.sni_present);
  hello_builder empty = testing::typical();
  empty.extensions.clear();
  const auto q = parse(empty.wire());
  ASSERT_EQ(name_of(q->status), "complete");
  EXPECT_TRUE(q->hello.extensions_present);
  EXPECT_TRUE(q->hello.extensions.empty());
}

TEST(Fingerprint, GreaseIsLeftOutAndCountsUseTheRest) {
  const auto p = parse(testing::typical().wire());
  ASSERT_EQ(name_of(p->status), "complete");
  const ja3_fingerprint j3 = ja3(p->hello);
  EXPECT_EQ(j3.full, "771,4865-4866-4867-49195-49199,0-23-10-11-16-13-43-51-65037,29-23,0");
  EXPECT_EQ(j3.md5.size(), kJa3Size);  // what a record keeps inline (proxy/observation.hpp)
  const ja4_fingerprint j4 = ja4(p->hello);
  EXPECT_EQ(j4.ja4.substr(0, 11), "t13d0509h2_");
  EXPECT_EQ(j4.ja4_r,
            "t13d0509h2_1301,1302,1303,c02b,c02f_000a,000b,000d,0017,002b,0033,fe0d_0403,0804,"
            "0401");
  EXPECT_EQ(j4.ja4_ro,
            "t13d0509h2_1301,1302,1303,c02b,c02f_0000,0017,000a,000b,0010,000d,002b,0033,fe0d_"
            "0403,0804,0401");
  EXPECT_EQ(j4.ja4.size(), kJa4Size);
  EXPECT_EQ(ja4(p->hello, ja4_transport::quic).ja4[0], 'q');
}

// fingerprints() keeps each result per thread with the values it came from
// (tls/fingerprint.cpp, result_memo). Variants of one hello, each changing one input of JA3 or
// JA4, fingerprinted in turn and again (more of them than the memo holds), must each give what
// ja3() and ja4() compute from scratch: a key that missed an input would hand out a stale result.
TEST(Fingerprint, KeptResultsFollowEveryInput) {
  std::vector<hello_builder> variants(14, testing::typical());
  auto ext_body = [](hello_builder& b, std::uint16_t type) -> bytes& {
    for (auto& [t, body] : b.extensions) {
      if (t == type) {
        return body;
      }
    }
    ADD_FAILURE() << "no extension " << type;
    return b.extensions.front().second;
  };
  variants[1].ciphers[0] = 0x5a5a;                                  // another GREASE value
  std::swap(variants[2].extensions[2], variants[2].extensions[3]);  // wire order only
  variants[3].ciphers.back() = 0xc030;
  ext_body(variants[4], 0x000a) = testing::u16_list_body({0x001d, 0x0018});  // groups
  ext_body(variants[5], 0x000b) = testing::u8_prefixed({0, 1});              // point formats
  ext_body(variants[6], 0x000d) = testing::u16_list_body({0x0804, 0x0403});  // sigalgs order
  ext_body(variants[7], 0x0010) = testing::alpn_body({"http/1.1"});
  variants[8].extensions.erase(variants[8].extensions.begin() + 1);  // no SNI
  variants[9].legacy_version = 0x0301;
  ext_body(variants[10], 0x002b) = testing::versions_body({0x0303});
  variants[11].ext(0x0015, bytes(8, 0));                                      // padding added
  std::swap(variants[12].ciphers[1], variants[12].ciphers[2]);                // cipher order
  ext_body(variants[13], 0x000a) = testing::u16_list_body({0x0017, 0x001d});  // groups order
  std::vector<std::pair<std::string, std::string>> expected;
  for (const hello_builder& b : variants) {
    const auto p = parse(b.wire());
    ASSERT_EQ(name_of(p->status), "complete");
    expected.emplace_back(ja3(p->hello).md5, ja4(p->hello).ja4);
  }
  // Each variant but the GREASE one and the reordered extensions changes a fingerprint.
  EXPECT_EQ(expected[1], expected[0]);
  EXPECT_NE(expected[2].first, expected[0].first);
  EXPECT_EQ(expected[2].second, expected[0].second);
  for (std::size_t i = 3; i < variants.size(); ++i) {
    EXPECT_NE(expected[i], expected[0]) << "variant " << i;
  }
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < variants.size(); ++i) {
      const std::size_t v = round == 1 ? variants.size() - 1 - i : i;
      const auto p = parse(variants[v].wire());
      const hello_fingerprints f = fingerprints(p->hello);
      EXPECT_EQ(f.ja3_text(), expected[v].first) << "variant " << v << " round " << round;
      EXPECT_EQ(f.ja4_text(), expected[v].second) << "variant " << v << " round " << round;
    }
  }
}

std::string ja4_a(const hello_builder& b) {
  const auto p = parse(b.wire());
  EXPECT_EQ(name_of(p->status), "complete");
  return ja4(p->hello).ja4.substr(0, 10);
}

TEST(Fingerprint, Ja4AlpnAndCountRules) {
  hello_builder b = testing::typical();
  b.extensions[5].second = testing::alpn_body({"h"});
  EXPECT_EQ(ja4_a(b), "t13d0509hh");
  b.extensions[5].second = testing::alpn_body({std::string("\x01\xab", 2)});
  EXPECT_EQ(ja4_a(b), "t13d05090b");
  b.extensions[5].second = testing::alpn_body({"h2c-", "h2"});
  EXPECT_EQ(ja4_a(b),
            "t13d0509"
            "6d");  // '-' is not alphanumeric: hex of 'h' (68) .. '-' (2d)
  b.extensions.erase(b.extensions.begin() + 5);
  EXPECT_EQ(ja4_a(b), "t13d050800");
  b.extensions.erase(b.extensions.begin() + 1);  // no SNI: 'i'
  EXPECT_EQ(ja4_a(b), "t13i050700");
  b.ciphers.clear();
  for (std::uint16_t c = 1; c <= 120; ++c) {
    b.ciphers.push_back(c);
  }
  EXPECT_EQ(ja4_a(b), "t13i990700");
  // Without supported_versions the legacy version counts.
  hello_builder old = testing::typical();
  old.extensions.erase(old.extensions.begin() + 7);
  EXPECT_EQ(ja4_a(old), "t12d0508h2");
  old.legacy_version = 0x0300;
  EXPECT_EQ(ja4_a(old), "ts3d0508h2");
}

TEST(Fingerprint, Ja4WithoutSignatureAlgorithmsHasNoSecondUnderscore) {
  hello_builder b = testing::typical();
  b.extensions.erase(b.extensions.begin() + 6);
  const auto p = parse(b.wire());
  ASSERT_EQ(name_of(p->status), "complete");
  EXPECT_EQ(ja4(p->hello).ja4_r,
            "t13d0508h2_1301,1302,1303,c02b,c02f_000a,000b,0017,002b,0033,fe0d");
}

// Lists longer than fingerprint.cpp keeps in its fixed arrays (256 values) go on to the heap and
// still give every value, GREASE left out, in wire and in sorted order. The expected strings and
// hashes are built here from the builder's lists, with libcrypto's one-shot digests.
void hex_byte(std::string& s, std::uint8_t b) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  s += kDigits.at(b >> 4U);
  s += kDigits.at(b & 0xfU);
}

std::string digest_hex(const char* name, const std::string& text, std::size_t digits) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  EXPECT_EQ(
      EVP_Digest(text.data(), text.size(), md.data(), &len, EVP_get_digestbyname(name), nullptr),
      1);
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) {
    hex_byte(hex, md.at(i));
  }
  return hex.substr(0, digits);
}

std::string joined(const std::vector<std::uint16_t>& values, bool hex) {
  std::string s;
  for (const std::uint16_t v : values) {
    if (!s.empty()) {
      s += hex ? "," : "-";
    }
    if (hex) {
      hex_byte(s, static_cast<std::uint8_t>(v >> 8U));
      hex_byte(s, static_cast<std::uint8_t>(v));
    } else {
      s += std::to_string(v);
    }
  }
  return s;
}

TEST(Fingerprint, ListsLongerThanTheFixedArraysKeepEveryValue) {
  hello_builder b = testing::typical();
  std::vector<std::uint16_t> ciphers = {0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f};
  std::vector<std::uint16_t> exts = {0x0000, 0x0017, 0x000a, 0x000b, 0x0010,
                                     0x000d, 0x002b, 0x0033, 0xfe0d};
  for (std::uint16_t i = 300; i > 0; --i) {
    const auto cipher = static_cast<std::uint16_t>(0x1400 + i);
    b.ciphers.push_back(cipher);
    ciphers.push_back(cipher);
    if (i == 150) {
      b.ciphers.push_back(0x2a2a);  // GREASE past the fixed array is left out too
    }
    const auto type = static_cast<std::uint16_t>(0x3000 + i);
    b.ext(type, {});
    exts.push_back(type);
  }
  const auto p = parse(b.wire());
  ASSERT_EQ(name_of(p->status), "complete");

  const std::string full = "771," + joined(ciphers, false) + "," + joined(exts, false) + ",29-23,0";
  const ja3_fingerprint j3 = ja3(p->hello);
  EXPECT_EQ(j3.full, full);
  EXPECT_EQ(j3.md5, digest_hex("MD5", full, kJa3Size));

  std::vector<std::uint16_t> sorted_ciphers = ciphers;
  std::ranges::sort(sorted_ciphers);
  std::vector<std::uint16_t> sorted_exts(exts.begin() + 1, exts.end());  // no SNI
  std::erase(sorted_exts, kExtAlpn);
  std::ranges::sort(sorted_exts);
  const std::string sigalgs = "_0403,0804,0401";
  const std::string a = "t13d9999h2";
  const std::string b_sorted = joined(sorted_ciphers, true);
  const std::string c_sorted = joined(sorted_exts, true) + sigalgs;
  const std::string b_wire = joined(ciphers, true);
  const std::string c_wire = joined(exts, true) + sigalgs;
  const ja4_fingerprint j4 = ja4(p->hello);
  EXPECT_EQ(j4.ja4_r, a + "_" + b_sorted + "_" + c_sorted);
  EXPECT_EQ(j4.ja4_ro, a + "_" + b_wire + "_" + c_wire);
  EXPECT_EQ(j4.ja4, a + "_" + digest_hex("SHA256", b_sorted, 12) + "_" +
                        digest_hex("SHA256", c_sorted, 12));
  EXPECT_EQ(j4.ja4_o,
            a + "_" + digest_hex("SHA256", b_wire, 12) + "_" + digest_hex("SHA256", c_wire, 12));
}

// An outer ECHClientHello: type 0, kdf 0x0001, aead 0x0001, config_id, enc, payload.
bytes ech_outer(std::uint8_t config_id) {
  bytes b = {0, 0x00, 0x01, 0x00, 0x01, config_id};
  append(b, testing::u16_prefixed(bytes(32, 0x33)));
  append(b, testing::u16_prefixed(bytes(200, 0x44)));
  return b;
}

// typical_with_ech: testing::typical() with its ECH extension's body replaced (none when empty).
hello_builder typical_with_ech(std::optional<bytes> body) {
  hello_builder b = testing::typical();
  std::erase_if(b.extensions, [](const auto& e) { return e.first == kExtEncryptedClientHello; });
  if (body) {
    b.ext(kExtEncryptedClientHello, *body);
  }
  return b;
}

TEST(ClientHello, EchConfigIdOfAnOuterEch) {
  std::vector<std::uint8_t> scratch(kScratchLen);
  client_hello h;
  const bytes outer = typical_with_ech(ech_outer(0xa7)).wire();
  ASSERT_EQ(parse_client_hello(outer, scratch, h), hello_status::complete);
  EXPECT_TRUE(h.ech_present);
  EXPECT_EQ(h.ech_config_id, 0xa7);
  // An inner ECH (type 1) has no config_id; a body too short for one is not an error (a server
  // without ECH ignores the extension), it just has none.
  for (const bytes& body : {bytes{1}, bytes{0, 0, 1}, bytes{}, bytes(40, 0x01)}) {
    const bytes w = typical_with_ech(body).wire();
    ASSERT_EQ(parse_client_hello(w, scratch, h), hello_status::complete);
    EXPECT_TRUE(h.ech_present);
    EXPECT_EQ(h.ech_config_id, -1);
  }
  ASSERT_EQ(parse_client_hello(typical_with_ech(std::nullopt).wire(), scratch, h),
            hello_status::complete);
  EXPECT_FALSE(h.ech_present);
  EXPECT_EQ(h.ech_config_id, -1);
}

// server_name_arrived on every prefix of a hello split into records at every point: the answer
// turns true exactly when the last byte of the server_name extension is there, wherever the
// record boundaries fall.
TEST(ClientHello, ServerNameArrivesWithItsLastByteAcrossRecords) {
  const hello_builder b = testing::typical();
  const bytes msg = b.handshake();
  std::vector<std::uint8_t> scratch(kScratchLen);
  // In the message: 4 header + 2 + 32 + 33 + 2 + 12 ciphers + 2 compression + 2 extensions
  // length + the GREASE extension (4) + server_name (4 + its body).
  const std::size_t sni_end_in_msg =
      4 + 2 + 32 + 33 + 2 + 12 + 2 + 2 + 4 + 4 + testing::sni_body({"www.example.test"}).size();
  for (std::size_t split = 1; split < msg.size(); split += 7) {
    const bytes wire = hello_builder::frame(msg, {split});
    // The wire offset of the extension's end: one record header, two once past the split.
    const std::size_t end = sni_end_in_msg + 5 + (sni_end_in_msg > split ? 5 : 0);
    for (std::size_t k = 0; k <= wire.size(); ++k) {
      const std::vector<std::uint8_t> prefix(wire.begin(),
                                             wire.begin() + static_cast<std::ptrdiff_t>(k));
      ASSERT_EQ(server_name_arrived(prefix, scratch), k >= end) << "split " << split << " k " << k;
    }
  }
}

TEST(ClientHello, ServerNameArrivedIsFalseForWhatIsNotATlsHello) {
  std::vector<std::uint8_t> scratch(kScratchLen);
  const std::string http = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  EXPECT_FALSE(server_name_arrived(bytes(http.begin(), http.end()), scratch));
  EXPECT_FALSE(server_name_arrived(bytes{}, scratch));
  // No SNI at all.
  hello_builder b;
  b.ext(0x000a, testing::u16_list_body({0x001d}));
  EXPECT_FALSE(server_name_arrived(b.wire(), scratch));
  // A record that is not handshake, and a scratch too small to gather a split hello.
  bytes alert = {21, 3, 3, 0, 2, 2, 40};
  EXPECT_FALSE(server_name_arrived(alert, scratch));
  const bytes split = hello_builder::frame(testing::typical().handshake(), {20});
  std::vector<std::uint8_t> tiny(10);
  EXPECT_FALSE(server_name_arrived(split, tiny));
  EXPECT_TRUE(server_name_arrived(split, scratch));
  // After a PostgreSQL SSLRequest.
  bytes pg = {0x00, 0x00, 0x00, 0x08, 0x04, 0xd2, 0x16, 0x2f};
  append(pg, testing::typical().wire());
  EXPECT_TRUE(server_name_arrived(pg, scratch));
}

}  // namespace
}  // namespace linesman::tls
