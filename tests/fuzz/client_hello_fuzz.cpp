// client_hello_fuzz: libFuzzer target for tls::parse_client_hello and the JA3/JA4 fingerprints.
//
// Besides "no crash, no sanitizer finding", it checks the properties a proxy relies on:
//   - a verdict is final: a prefix of the input is either `incomplete` or gets the whole input's
//     status (and for a complete hello, every prefix shorter than the hello is `incomplete`, every
//     longer one parses to the same fields);
//   - a hello parses the same when its handshake message is re-framed into two records;
//   - server_name_arrived is monotone over prefixes (once true, true for every longer prefix),
//     true on a whole TLS hello exactly when it has a server_name extension, and the same after
//     re-framing; every group names to a non-empty string.
// Seeds: tests/data/corpus/cases.
#include "tls/client_hello.hpp"
#include "tls/fingerprint.hpp"
#include "tls/names.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

namespace {

using linesman::tls::client_hello;
using linesman::tls::hello_status;

// signature: every parsed field, flattened, to compare two parses of the same hello.
std::string signature(const client_hello& h) {
  std::string s;
  auto add_bytes = [&](std::span<const std::uint8_t> b) {
    s += std::to_string(b.size()) + ":";
    s.append(b.begin(), b.end());
    s += ";";
  };
  s += std::to_string(static_cast<int>(h.format)) + "," + std::to_string(h.tls_offset) + "," +
       std::to_string(h.legacy_version) + "," + std::to_string(h.handshake_len) + ",";
  add_bytes(h.random);
  add_bytes(h.session_id);
  add_bytes(h.cipher_suites.bytes());
  add_bytes(h.sslv2_cipher_specs.bytes());
  add_bytes(h.compression_methods);
  for (const auto& e : h.extensions) {
    s += std::to_string(e.type) + "=";
    add_bytes(e.body);
  }
  for (const auto& n : h.server_names) {
    s += std::to_string(n.name_type);
    add_bytes(n.name);
  }
  add_bytes(h.sni);
  for (auto a : h.alpn) {
    add_bytes(a);
  }
  for (std::uint16_t v : h.supported_versions) {
    s += std::to_string(v) + ",";
  }
  for (std::uint16_t v : h.signature_algorithms) {
    s += std::to_string(v) + ",";
  }
  for (std::uint16_t v : h.supported_groups) {
    s += std::to_string(v) + ",";
  }
  for (const auto& k : h.key_shares) {
    s += std::to_string(k.group);
    add_bytes(k.key);
  }
  add_bytes(h.ec_point_formats);
  s += std::to_string(h.sni_present) + std::to_string(h.alpn_present) +
       std::to_string(h.ech_present) + std::to_string(h.psk_present) +
       std::to_string(h.grease_present);
  return s;
}

void check(bool ok) {
  if (!ok) {
    std::abort();
  }
}

hello_status parse_copy(std::span<const std::uint8_t> in, std::vector<std::uint8_t>& holder,
                        std::vector<std::uint8_t>& scratch, client_hello& out) {
  holder.assign(in.begin(), in.end());  // exact size: ASan sees any over-read
  return linesman::tls::parse_client_hello(holder, scratch, out);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> in(data, size);
  std::vector<std::uint8_t> scratch(linesman::tls::kScratchLen);
  client_hello whole;
  const hello_status st = linesman::tls::parse_client_hello(in, scratch, whole);
  std::string whole_sig;
  std::size_t hello_end = 0;
  if (st == hello_status::complete) {
    const auto j3 = linesman::tls::ja3(whole);
    const auto j4 = linesman::tls::ja4(whole);
    check(j3.md5.size() == 32 && j4.ja4.size() == 36);
    whole_sig = signature(whole);
    hello_end = whole.tls_offset + whole.wire_len;
    check(hello_end <= size);
    for (std::uint16_t g : whole.supported_groups) {
      check(!linesman::tls::group_name(g).view().empty());
    }
    check(whole.ech_config_id >= -1 && whole.ech_config_id <= 255);
    if (whole.format == linesman::tls::hello_format::tls) {
      check(linesman::tls::server_name_arrived(in.first(hello_end), scratch) == whole.sni_present);
    }
  }

  // Prefixes at a few cut points derived from the input.
  std::vector<std::uint8_t> holder;
  std::vector<std::uint8_t> scratch2(linesman::tls::kScratchLen);
  const std::size_t seed = size == 0 ? 0 : data[size / 2];
  bool arrived_before = false;
  std::size_t min_arrived_cut = 0;
  for (std::size_t cut : {size / 2, (size * seed) / 256, size > 0 ? size - 1 : 0, hello_end}) {
    if (cut > size) {
      continue;
    }
    holder.assign(in.begin(), in.begin() + static_cast<std::ptrdiff_t>(cut));
    const bool arrived = linesman::tls::server_name_arrived(holder, scratch2);
    if (arrived_before && cut >= min_arrived_cut) {
      check(arrived);
    }
    if (arrived && (!arrived_before || cut < min_arrived_cut)) {
      arrived_before = true;
      min_arrived_cut = cut;
    }
    client_hello part;
    const hello_status ps = parse_copy(in.first(cut), holder, scratch2, part);
    if (st == hello_status::complete) {
      if (cut < hello_end) {
        check(ps == hello_status::incomplete);
      } else {
        check(ps == hello_status::complete && signature(part) == whole_sig);
      }
    } else if (ps != hello_status::incomplete) {
      check(ps == st);
    }
  }

  // Re-frame a one-record TLS hello into two records: same fields.
  if (st == hello_status::complete && whole.format == linesman::tls::hello_format::tls &&
      whole.records == 1 && whole.handshake_len >= 2) {
    const std::span<const std::uint8_t> message =
        in.subspan(whole.tls_offset + linesman::tls::kRecordHeaderLen, whole.handshake_len);
    const std::size_t first = 1 + seed % (whole.handshake_len - 1);
    std::vector<std::uint8_t> framed(in.begin(),
                                     in.begin() + static_cast<std::ptrdiff_t>(whole.tls_offset));
    auto record = [&](std::span<const std::uint8_t> fragment) {
      framed.push_back(22);
      framed.push_back(3);
      framed.push_back(1);
      framed.push_back(static_cast<std::uint8_t>(fragment.size() >> 8));
      framed.push_back(static_cast<std::uint8_t>(fragment.size() & 0xff));
      framed.insert(framed.end(), fragment.begin(), fragment.end());
    };
    record(message.first(first));
    record(message.subspan(first));
    client_hello split;
    const hello_status ss = parse_copy(framed, holder, scratch2, split);
    check(ss == hello_status::complete && split.records == 2 && signature(split) == whole_sig);
    check(linesman::tls::server_name_arrived(framed, scratch2) == whole.sni_present);
  }
  return 0;
}
