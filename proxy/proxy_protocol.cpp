#include "proxy/proxy_protocol.hpp"

#include "proxy/connection.hpp"
#include "proxy/connection_detail.hpp"
#include "tls/hex.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <array>
#include <cstring>

#include <asio/experimental/awaitable_operators.hpp>
#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

using detail::steady;

// pp_endpoint_value: a PROXY header endpoint as the record shows it.
endpoint_value pp_endpoint_value(const tls::proxy_endpoint& ep) {
  endpoint_value v;
  std::array<char, INET6_ADDRSTRLEN> text{};
  const int af = ep.addr_len == 4 ? AF_INET : AF_INET6;
  if (inet_ntop(af, ep.addr.data(), text.data(), static_cast<socklen_t>(text.size())) != nullptr) {
    v.ip = text.data();
  }
  v.port = ep.port;
  return v;
}

// to_pp_endpoint: a recorded endpoint back into PROXY header form; addr_len 0 if unparsable.
tls::proxy_endpoint to_pp_endpoint(const endpoint_value& v) {
  tls::proxy_endpoint ep;
  if (inet_pton(AF_INET, v.ip.c_str(), ep.addr.data()) == 1) {
    ep.addr_len = 4;
  } else if (inet_pton(AF_INET6, v.ip.c_str(), ep.addr.data()) == 1) {
    ep.addr_len = 16;
  }
  ep.port = v.port;
  return ep;
}

// tlv_text: a TLV value as text when printable, else as lowercase hex.
std::string tlv_text(std::span<const std::uint8_t> v) {
  bool printable = true;
  for (const auto b : v) {
    printable = printable && b >= 0x20 && b < 0x7f;
  }
  std::string out;
  if (printable) {
    out.assign(v.begin(), v.end());
    return out;
  }
  tls::append_hex(out, v);
  return out;
}

// pp_tlvs_json: the v2 TLVs by name (first occurrence of each; unknown types listed by number).
nlohmann::json pp_tlvs_json(const tls::proxy_header& h) {
  nlohmann::json t = nlohmann::json::object();
  if (!h.alpn.empty()) {
    t["alpn"] = tlv_text(h.alpn);
  }
  if (!h.authority.empty()) {
    t["authority"] = tlv_text(h.authority);
  }
  if (!h.unique_id.empty()) {
    t["unique_id"] = tlv_text(h.unique_id);
  }
  if (!h.netns.empty()) {
    t["netns"] = tlv_text(h.netns);
  }
  if (h.has_crc32c) {
    t["crc32c"] = h.crc32c_ok ? "ok" : "mismatch";
  }
  if (h.ssl.present) {
    nlohmann::json ssl{{"client", h.ssl.client}, {"verify", h.ssl.verify}};
    if (!h.ssl.version.empty()) {
      ssl["version"] = tlv_text(h.ssl.version);
    }
    if (!h.ssl.cn.empty()) {
      ssl["cn"] = tlv_text(h.ssl.cn);
    }
    if (!h.ssl.cipher.empty()) {
      ssl["cipher"] = tlv_text(h.ssl.cipher);
    }
    t["ssl"] = std::move(ssl);
  }
  nlohmann::json other = nlohmann::json::array();
  tls::byte_reader block(h.tlvs);
  tls::proxy_tlv tlv;
  for (int i = 0; i < 4096 && tls::next_proxy_tlv(block, tlv); ++i) {
    switch (tlv.type) {
      case tls::kPp2TypeAlpn:
      case tls::kPp2TypeAuthority:
      case tls::kPp2TypeCrc32c:
      case tls::kPp2TypeNoop:
      case tls::kPp2TypeUniqueId:
      case tls::kPp2TypeSsl:
      case tls::kPp2TypeNetns:
        break;
      default:
        other.push_back(tlv.type);
    }
  }
  if (!other.empty()) {
    t["other_types"] = std::move(other);
  }
  return t;
}

}  // namespace

std::size_t proxy_header_want(std::span<const std::uint8_t> so_far) {
  const std::size_t len = so_far.size();
  if (len < tls::kProxyV2Signature.size()) {
    return tls::kProxyV2Signature.size() - len;
  }
  if (so_far.front() == 'P') {
    return 1;  // v1 ends at CRLF: never read past it
  }
  if (len < tls::kProxyV2HeaderLen) {
    return tls::kProxyV2HeaderLen - len;
  }
  const std::size_t total =
      tls::kProxyV2HeaderLen + (std::size_t{so_far[14]} << 8U) + std::size_t{so_far[15]};
  return total > len ? total - len : 1;
}

proxy_protocol_value describe_proxy_header(const tls::proxy_header& h) {
  proxy_protocol_value v;
  v.version = h.version == tls::proxy_version::v1 ? 1 : 2;
  v.command = h.command == tls::proxy_command::local ? "local" : "proxy";
  if (h.source.addr_len != 0) {
    v.source = pp_endpoint_value(h.source);
  }
  if (h.destination.addr_len != 0) {
    v.destination = pp_endpoint_value(h.destination);
  }
  if (h.version == tls::proxy_version::v2) {
    v.tlvs = pp_tlvs_json(h);
  }
  v.forwarded = false;  // true once send_proxy_header wrote it upstream unchanged
  return v;
}

const char* proxy_header_rejection(const proxy_protocol_config& pp, const tls::proxy_header& h,
                                   const endpoint_value& client) {
  if ((pp.in == proxy_in_mode::v1 && h.version != tls::proxy_version::v1) ||
      (pp.in == proxy_in_mode::v2 && h.version != tls::proxy_version::v2)) {
    return "version_mismatch";
  }
  const auto peer = to_pp_endpoint(client);
  for (const auto& net : pp.trusted) {
    if (cidr_contains(net, peer.address())) {
      return nullptr;
    }
  }
  return "untrusted_source";
}

std::size_t build_proxy_header(int version, const access_record& r, std::span<std::uint8_t> out,
                               proxy_out_value& desc) {
  desc.version = version;
  desc.source = r.client;
  desc.destination = r.local;
  if (r.proxy_protocol && r.proxy_protocol->source && r.proxy_protocol->destination) {
    desc.source = *r.proxy_protocol->source;  // the real client, as the hop before us said
    desc.destination = *r.proxy_protocol->destination;
  }
  auto src = to_pp_endpoint(desc.source);
  auto dst = to_pp_endpoint(desc.destination);
  if (src.addr_len != dst.addr_len) {
    desc.source = r.client;
    desc.destination = r.local;
    src = to_pp_endpoint(desc.source);
    dst = to_pp_endpoint(desc.destination);
  }
  if (version == 1) {
    return tls::write_proxy_v1(src, dst, out);
  }
  tls::proxy_v2_tlvs t;
  if (r.tls && r.tls->sni && r.tls->sni->size() <= 255) {
    desc.authority = *r.tls->sni;
    t.authority = desc.authority;
  }
  t.unique_id = std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(r.id.data()),
                                              std::min(r.id.size(), tls::kProxyV2MaxUniqueId));
  return tls::write_proxy_v2(src, dst, t, out);
}

asio::awaitable<connection::flight_end> connection::read_proxy_header() {
  co_await asio::this_coro::throw_if_cancelled(false);
  // Each read adds at least one byte and a header is at most 16 + 65535 bytes: bounded.
  proxy_header_in_.reserve(tls::kProxyV1MaxLen);
  for (std::size_t i = 0; i <= tls::kProxyV2HeaderLen + 65535; ++i) {
    const std::size_t len = proxy_header_in_.size();
    const std::size_t want = proxy_header_want(proxy_header_in_);
    proxy_header_in_.resize(len + want);
    auto [ec, n] = co_await client().async_read_some(
        asio::buffer(proxy_header_in_.data() + len, want), kTuple);
    proxy_header_in_.resize(len + (ec ? 0 : n));
    if (!ec && n > 0) {
      on_bytes(dir::c2u, n);
      record_bytes(dir::c2u, proxy_header_in_.data() + len, n);
    }
    if (ec == asio::error::operation_aborted) {
      co_return flight_end::cancelled;
    }
    if (ec) {
      co_return note_client_read_error(ec);
    }
    tls::proxy_header h;
    if (tls::parse_proxy_header(proxy_header_in_, h) != tls::proxy_status::incomplete ||
        co_await detail::cancelled()) {
      co_return flight_end::decided;
    }
  }
  co_return flight_end::decided;
}

void connection::reject_proxy_header(const char* why) {
  if (!record_.proxy_protocol) {
    record_.proxy_protocol = proxy_protocol_value{};
  }
  record_.proxy_protocol->error = why;
  record_.proxy_protocol->forwarded = false;
  if (facts_.client_end == side_end::none) {
    facts_.client_end = side_end::proxy;
    facts_.first_close = stop_by::proxy;
    facts_.client = client_verdict::malformed;
    client_check_.verdict = client_verdict::malformed;
  }
  // What the client sent is its first flight as far as the record goes (a PROXY header shows
  // as client_first.protocol proxy_v1/proxy_v2).
  if (!proxy_header_in_.empty()) {
    (void)inspect_client_flight(proxy_header_in_, 1, true, record_);
  }
  end_before_stream(stop_phase::inspect);
}

asio::awaitable<bool> connection::accept_proxy_header() {
  using namespace asio::experimental::awaitable_operators;
  auto r = co_await (read_proxy_header() || watch(accepted_ + listener_.cfg.limits.peek));
  const char* missing = proxy_header_in_.empty() ? "missing" : "incomplete";
  if (r.index() == 1) {
    facts_.fired = std::get<1>(r);
    if (facts_.fired == timer_fire::shutdown) {
      end_before_stream(stop_phase::inspect);
      co_return false;
    }
    facts_.client_end = side_end::timeout;
    facts_.first_close = stop_by::proxy;
    reject_proxy_header(missing);
    co_return false;
  }
  if (std::get<0>(r) != flight_end::decided && std::get<0>(r) != flight_end::cancelled) {
    reject_proxy_header(missing);  // the client closed or reset first
    co_return false;
  }
  tls::proxy_header h;
  const auto status = tls::parse_proxy_header(proxy_header_in_, h);
  if (status == tls::proxy_status::not_proxy) {
    if (listener_.cfg.pp.in != proxy_in_mode::auto_detect) {
      reject_proxy_header("missing");
      co_return false;
    }
    // auto: no header; what was read is the start of the client's first flight.
    auto& f = src(dir::c2u).first;
    f.buf.assign(proxy_header_in_);
    f.len = proxy_header_in_.size();
    f.reads = 1;
    inspect_client(false);
    proxy_header_in_.clear();
    co_return true;
  }
  if (status != tls::proxy_status::complete) {
    reject_proxy_header("malformed");
    co_return false;
  }
  record_.proxy_protocol = describe_proxy_header(h);
  if (const char* why = proxy_header_rejection(listener_.cfg.pp, h, record_.client)) {
    reject_proxy_header(why);
    co_return false;
  }
  proxy_header_accepted_ = true;
  co_return true;
}

asio::awaitable<void> connection::send_proxy_header() {
  using namespace asio::experimental::awaitable_operators;
  co_await asio::this_coro::throw_if_cancelled(false);
  // (A forwarded header counts as "sent" only when no route or listener writes its own.)
  if (proxy_out_version_ == 0) {
    if (proxy_header_accepted_ && !listener_.cfg.pp.strip) {
      auto [ec, n] = co_await asio::async_write(upstream(), asio::buffer(proxy_header_in_), kTuple);
      record_.bytes.to_upstream += n;
      record_.proxy_protocol->forwarded = n == proxy_header_in_.size();
      (void)ec;  // a failed write shows again in the relay, which classifies it
    }
    co_return;
  }
  // v2 carries the SNI: give the client's first flight a moment to arrive (bounded by the peek
  // timeout and kAuthorityWait, so a server-speaks-first protocol is delayed by little).
  if (proxy_out_version_ == 2 && !src(dir::c2u).first.done && facts_.client_end == side_end::none) {
    constexpr auto kAuthorityWait = std::chrono::milliseconds(500);
    const auto until =
        std::min(accepted_ + listener_.cfg.limits.peek, steady::now() + kAuthorityWait);
    co_await (read_client_flight() || watch(until));
  }
  proxy_out_value out;
  std::array<std::uint8_t, 512> buf{};
  const std::size_t len = build_proxy_header(proxy_out_version_, record_, buf, out);
  if (len == 0) {
    spdlog::warn("{} could not build a PROXY v{} header", record_.id, proxy_out_version_);
    co_return;
  }
  auto [ec, n] = co_await asio::async_write(upstream(), asio::buffer(buf.data(), len), kTuple);
  out.bytes = n;
  (void)ec;  // a failed write shows again in the relay, which classifies it
  record_.proxy_out = std::move(out);
}

}  // namespace linesman::proxy
