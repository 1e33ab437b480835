#include "capture/replay.hpp"

#include "capture/hello_rewrite.hpp"
#include "capture/pcapng_writer.hpp"
#include "tls/client_hello.hpp"
#include "tls/detect.hpp"
#include "tls/names.hpp"
#include "tls/server_hello.hpp"
#include "tls/verdict.hpp"
#include "tls/x509.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <sstream>
#include <thread>

#include <asio.hpp>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

namespace linesman::capture {

namespace {

using steady = std::chrono::steady_clock;
using tcp = asio::ip::tcp;

// Stop names: the schema's strings (proxy/stop.hpp's to_string), spelled out because capture/
// sits below proxy/ and cannot link it.
constexpr const char* kPhaseConnect = "connect";
constexpr const char* kPhaseFirstReply = "first_reply";
constexpr const char* kPhaseStream = "stream";

constexpr std::uint64_t kMaxRawFileBytes = 16U << 20;
constexpr std::chrono::seconds kMaxTotalGaps{30};

// run_until: run `io` until `done` or `d` passes; on timeout call `cancel` and let the aborted
// handler run. Returns false on timeout.
template <typename Cancel>
bool run_until(asio::io_context& io, const bool& done, steady::duration d, Cancel cancel) {
  io.restart();
  const auto deadline = steady::now() + d;
  while (!done) {
    const auto now = steady::now();
    if (now >= deadline) {
      break;
    }
    io.run_one_for(deadline - now);
  }
  if (done) {
    return true;
  }
  cancel();
  io.restart();
  for (int i = 0; i < 1000 && !done; ++i) {
    io.run_one_for(std::chrono::milliseconds(100));
  }
  return false;
}

std::string errno_name(const std::error_code& ec) {
  if (ec.category() != asio::error::get_system_category() &&
      ec.category() != std::generic_category() && ec.category() != std::system_category()) {
    return {};
  }
  switch (ec.value()) {
    case ECONNREFUSED:
      return "ECONNREFUSED";
    case ECONNRESET:
      return "ECONNRESET";
    case ETIMEDOUT:
      return "ETIMEDOUT";
    case EHOSTUNREACH:
      return "EHOSTUNREACH";
    case ENETUNREACH:
      return "ENETUNREACH";
    case EPIPE:
      return "EPIPE";
    case EADDRNOTAVAIL:
      return "EADDRNOTAVAIL";
    case EACCES:
      return "EACCES";
    case EPERM:
      return "EPERM";
    default:
      return {};
  }
}

double ms_since(steady::time_point t0) {
  return std::chrono::duration<double, std::milli>(steady::now() - t0).count();
}

std::string tm_rfc3339(const ASN1_TIME* t) {
  std::tm tm{};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return {};
  }
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string version_text(const SSL* ssl) {
  switch (SSL_version(ssl)) {
    case TLS1_3_VERSION:
      return "1.3";
    case TLS1_2_VERSION:
      return "1.2";
    case TLS1_1_VERSION:
      return "1.1";
    case TLS1_VERSION:
      return "1.0";
    default:
      return SSL_get_version(ssl);
  }
}

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  if (e == 0) {
    return {};
  }
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

// hello_facts: what the flight's ClientHello says (SNI, ALPN, where TLS starts).
struct hello_facts {
  tls::hello_status status = tls::hello_status::not_tls;
  std::size_t tls_offset = 0;
  std::optional<std::string> sni;
  std::vector<std::string> alpn;
};

hello_facts read_hello(std::span<const std::uint8_t> flight) {
  hello_facts f;
  std::vector<std::uint8_t> scratch(tls::kScratchLen);
  tls::client_hello h;
  f.status = tls::parse_client_hello(flight, scratch, h);
  if (f.status == tls::hello_status::complete) {
    f.tls_offset = h.tls_offset;
    if (h.sni_present && !h.sni.empty()) {
      f.sni = std::string(h.sni.begin(), h.sni.end());
    }
    for (const auto& p : h.alpn) {
      f.alpn.emplace_back(p.begin(), p.end());
    }
  } else if (f.status != tls::hello_status::not_tls) {
    f.tls_offset = h.tls_offset;
  }
  return f;
}

// cert_of: subject, issuer, SANs (tls/x509's forms) and validity of one certificate.
cert_info cert_of(X509* x) {
  cert_info c;
  int len = i2d_X509(x, nullptr);
  if (len > 0) {
    std::vector<std::uint8_t> der(static_cast<std::size_t>(len));
    unsigned char* p = der.data();
    i2d_X509(x, &p);
    tls::certificate_names names;
    if (tls::describe_certificate(der, names)) {
      c.subject = names.subject;
      c.issuer = names.issuer;
      c.san = names.san;
    }
  }
  c.not_before = tm_rfc3339(X509_get0_notBefore(x));
  c.not_after = tm_rfc3339(X509_get0_notAfter(x));
  return c;
}

// connector: one TCP connection with deadlines, on a private io_context.
struct connector {
  asio::io_context io;
  tcp::socket sock{io};

  // connect: resolve and connect within `timeout`; fills the connect part of `v` on failure.
  bool connect(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
               verdict& v) {
    const auto t0 = steady::now();
    tcp::resolver resolver(io);
    bool done = false;
    std::error_code ec;
    tcp::resolver::results_type results;
    resolver.async_resolve(host, std::to_string(port),
                           [&](std::error_code e, tcp::resolver::results_type r) {
                             ec = e;
                             results = std::move(r);
                             done = true;
                           });
    if (!run_until(io, done, timeout, [&] { resolver.cancel(); }) || ec || results.empty()) {
      v.phase = kPhaseConnect;
      v.reason = "upstream_resolve_failed";
      v.by = "proxy";
      v.close = "never";
      return false;
    }
    done = false;
    tcp::endpoint chosen;
    asio::async_connect(sock, results, [&](std::error_code e, const tcp::endpoint& ep) {
      ec = e;
      chosen = ep;
      done = true;
    });
    const auto left =
        timeout - std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0);
    bool in_time = run_until(io, done, std::max(left, std::chrono::milliseconds(1)), [&] {
      std::error_code ignored;
      sock.close(ignored);
    });
    v.close = "never";
    v.phase = kPhaseConnect;
    v.by = "upstream";
    if (!in_time) {
      v.reason = "upstream_timeout";
      v.errno_name = "ETIMEDOUT";
      return false;
    }
    if (ec) {
      v.errno_name = errno_name(ec);
      if (ec == asio::error::connection_refused) {
        v.reason = "upstream_refused";
      } else if (ec == asio::error::host_unreachable || ec == asio::error::network_unreachable) {
        v.reason = "upstream_unreachable";
      } else if (ec == asio::error::timed_out) {
        v.reason = "upstream_timeout";
      } else {
        v.reason = "upstream_error";
        v.by = "proxy";
      }
      return false;
    }
    v.phase.clear();
    v.by.clear();
    v.close.clear();
    v.ip = chosen.address().to_string();
    v.port = chosen.port();
    v.connect_ms = ms_since(t0);
    std::error_code ignored;
    // Each write is its own segment, so --chunks 1 really sends one-byte segments.
    sock.set_option(tcp::no_delay(true), ignored);
    return true;
  }

  enum class read_end { data, eof, reset, timeout, error };

  // read_some: one read within `timeout`, appended to `out` (bounded by `max`).
  read_end read_some(std::vector<std::uint8_t>& out, std::size_t max, steady::duration timeout,
                     std::error_code& err) {
    std::array<std::uint8_t, 16384> buf{};
    const std::size_t room = max > out.size() ? std::min(buf.size(), max - out.size()) : 0;
    if (room == 0) {
      return read_end::data;
    }
    bool done = false;
    std::error_code ec;
    std::size_t n = 0;
    sock.async_read_some(asio::buffer(buf.data(), room), [&](std::error_code e, std::size_t k) {
      ec = e;
      n = k;
      done = true;
    });
    bool in_time = run_until(io, done, timeout, [&] {
      std::error_code ignored;
      sock.cancel(ignored);
    });
    if (n > 0) {
      out.insert(out.end(), buf.begin(), buf.begin() + static_cast<long>(n));
      return read_end::data;
    }
    if (!in_time) {
      return read_end::timeout;
    }
    err = ec;
    if (ec == asio::error::eof) {
      return read_end::eof;
    }
    if (ec == asio::error::connection_reset) {
      return read_end::reset;
    }
    return ec ? read_end::error : read_end::data;
  }

  // write_all: one write of `bytes` within `timeout`.
  std::error_code write_all(std::span<const std::uint8_t> bytes, steady::duration timeout) {
    bool done = false;
    std::error_code ec;
    asio::async_write(sock, asio::buffer(bytes.data(), bytes.size()),
                      [&](std::error_code e, std::size_t) {
                        ec = e;
                        done = true;
                      });
    if (!run_until(io, done, timeout, [&] {
          std::error_code ignored;
          sock.cancel(ignored);
        })) {
      return asio::error::timed_out;
    }
    return ec;
  }
};

// classify: fill upstream_first, server_tls and stop from the reply. `tls_part` is the reply
// from where the server answered the TLS bytes (after a PostgreSQL 'S', for instance).
void classify(std::span<const std::uint8_t> reply, std::span<const std::uint8_t> tls_part,
              bool client_tls, const std::string& close, verdict& v) {
  v.upstream_bytes = reply.size();
  if (reply.empty()) {
    v.upstream_protocol = "none";
    v.phase = kPhaseFirstReply;
    v.by = "upstream";
    if (close == "fin") {
      v.reason = "upstream_closed_silently";
    } else if (close == "rst") {
      v.reason = "upstream_reset";
      v.errno_name = "ECONNRESET";
    } else {
      v.reason = "upstream_silent";
    }
    return;
  }
  const tls::detection d = tls::detect_first_flight(reply, tls::direction::server_to_client);
  v.upstream_protocol = std::string(tls::protocol_name(d.proto));
  v.upstream_summary = std::string(d.summary.view());

  std::vector<std::uint8_t> scratch(tls::kServerScratchBytes);
  tls::server_flight f;
  const tls::server_status st = tls::parse_server_flight(tls_part, scratch, f);
  if (f.has_server_hello || f.alert) {
    v.has_server_tls = true;
    if (f.has_server_hello) {
      v.server_version = std::string(tls::version_name(f.version()).view());
      v.server_cipher = std::string(tls::cipher_suite_name(f.cipher_suite).view());
    }
    if (f.alert) {
      alert_info a;
      a.level = std::string(tls::alert_level_name(f.alert->level).view());
      a.description = std::string(tls::alert_description_name(f.alert->description).view());
      a.code = f.alert->description;
      v.server_alert = a;
    }
    if (!f.leaf_certificate.empty()) {
      tls::certificate_names names;
      if (tls::describe_certificate(f.leaf_certificate, names)) {
        cert_info c;
        c.subject = names.subject;
        c.issuer = names.issuer;
        c.san = names.san;
        v.server_certificate = c;
      }
    }
  }
  auto good = [&] {
    v.phase = kPhaseStream;
    v.reason = "completed";
    v.by = "client";  // the replay closed after reading the answer
    v.ok = true;
  };
  auto failed = [&](const char* reason) {
    v.phase = kPhaseFirstReply;
    v.reason = reason;
    v.by = "upstream";
  };
  // The decision is tls::classify_first_reply, shared with the proxy's access log.
  switch (tls::classify_first_reply(st, f.alert.has_value(), client_tls, d)) {
    case tls::first_reply::tls_alert:
      failed("upstream_tls_alert");
      return;
    case tls::first_reply::not_tls:
      failed("upstream_not_tls");
      return;
    case tls::first_reply::refusal:
      failed("upstream_error_reply");
      return;
    case tls::first_reply::tls:
    case tls::first_reply::plaintext:
      good();
      return;
  }
}

// reply_decided: whether the reply so far is enough to judge (no need to wait for more).
bool reply_decided(std::span<const std::uint8_t> reply, std::span<const std::uint8_t> tls_part) {
  if (reply.empty()) {
    return false;
  }
  std::vector<std::uint8_t> scratch(tls::kServerScratchBytes);
  tls::server_flight f;
  const tls::server_status st = tls::parse_server_flight(tls_part, scratch, f);
  if (st == tls::server_status::complete || f.alert) {
    return true;
  }
  if (st == tls::server_status::incomplete) {
    return false;
  }
  if (st != tls::server_status::not_tls) {
    return true;
  }
  // Not TLS: wait for a complete first line (or the settle time) so the summary is whole.
  return tls::detect_first_flight(reply, tls::direction::server_to_client).complete;
}

void do_handshake(const replay_input& in, std::span<const std::uint8_t> flight,
                  const hello_facts& hello, const replay_options& opts, const verdict& raw,
                  handshake_result& hs) {
  if (opts.sni) {
    hs.sni = *opts.sni;
  } else if (hello.sni) {
    hs.sni = *hello.sni;
  }
  hs.alpn_offered = hello.alpn;
  (void)in;
  connector c;
  verdict scratch_v;
  if (!c.connect(opts.host, opts.port, opts.connect_timeout, scratch_v)) {
    hs.error = "connect: " + scratch_v.reason;
    return;
  }
  // A prefix before the TLS bytes (a PostgreSQL SSLRequest) is sent raw, and its answer read.
  if (hello.tls_offset > 0 && hello.tls_offset <= flight.size()) {
    if (c.write_all(flight.first(hello.tls_offset), opts.reply_timeout)) {
      hs.error = "sending the pre-TLS bytes failed";
      return;
    }
    std::vector<std::uint8_t> answer;
    std::error_code ec;
    if (c.read_some(answer, 1, opts.reply_timeout, ec) != connector::read_end::data ||
        answer.empty()) {
      hs.error = "no answer to the pre-TLS bytes";
      return;
    }
  }
  std::error_code ec;
  int fd = c.sock.release(ec);
  if (ec || fd < 0) {
    hs.error = "socket: " + ec.message();
    return;
  }
  // Blocking I/O with kernel timeouts: OpenSSL drives the socket itself here.
  int flags = ::fcntl(fd, F_GETFL, 0);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  auto to_tv = [](std::chrono::milliseconds ms) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(ms.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((ms.count() % 1000) * 1000);
    return tv;
  };
  timeval tv = to_tv(opts.reply_timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);

  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx(SSL_CTX_new(TLS_client_method()),
                                                        &SSL_CTX_free);
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl(nullptr, &SSL_free);
  if (ctx) {
    SSL_CTX_set_default_verify_paths(ctx.get());
    // Verification is reported, not enforced: we want to see the certificate either way.
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
    ssl.reset(SSL_new(ctx.get()));
  }
  if (!ssl) {
    hs.error = "OpenSSL: " + openssl_error();
    ::close(fd);
    return;
  }
  SSL_set_fd(ssl.get(), fd);
  if (!hs.sni.empty()) {
    SSL_set_tlsext_host_name(ssl.get(), hs.sni.c_str());
  }
  if (!hs.alpn_offered.empty()) {
    std::vector<unsigned char> wire;
    for (const auto& p : hs.alpn_offered) {
      if (!p.empty() && p.size() < 256) {
        wire.push_back(static_cast<unsigned char>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
      }
    }
    SSL_set_alpn_protos(ssl.get(), wire.data(), static_cast<unsigned>(wire.size()));
  }
  ERR_clear_error();
  int rc = SSL_connect(ssl.get());
  if (rc != 1) {
    int err = SSL_get_error(ssl.get(), rc);
    std::string why = openssl_error();
    if (why.empty() && err == SSL_ERROR_SYSCALL) {
      why = errno == EAGAIN || errno == EWOULDBLOCK ? "timed out"
            : errno != 0                            ? std::strerror(errno)
                                                    : "the target closed the connection";
    }
    hs.error = why.empty() ? "handshake failed" : why;
  } else {
    hs.ok = true;
    hs.version = version_text(ssl.get());
    if (const SSL_CIPHER* cipher = SSL_get_current_cipher(ssl.get())) {
      hs.cipher = SSL_CIPHER_standard_name(cipher);
    }
    const unsigned char* alpn = nullptr;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(ssl.get(), &alpn, &alpn_len);
    if (alpn != nullptr) {
      hs.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    }
  }
  // The chain is there even when the handshake failed after the Certificate (TLS 1.2).
  if (STACK_OF(X509)* chain = SSL_get_peer_cert_chain(ssl.get())) {
    for (int i = 0; i < sk_X509_num(chain) && i < 16; ++i) {
      hs.chain.push_back(cert_of(sk_X509_value(chain, i)));
    }
  }
  if (hs.ok) {
    long vr = SSL_get_verify_result(ssl.get());
    hs.verified = vr == X509_V_OK;
    if (!hs.verified) {
      hs.verify_error = X509_verify_cert_error_string(vr);
    }
    if (X509* leaf = SSL_get1_peer_certificate(ssl.get())) {
      if (!hs.sni.empty()) {
        hs.checked_name = hs.sni;
        hs.name_matches = X509_check_host(leaf, hs.sni.data(), hs.sni.size(), 0, nullptr) == 1;
      } else if (!raw.ip.empty()) {
        hs.checked_name = raw.ip;
        hs.name_matches = X509_check_ip_asc(leaf, raw.ip.c_str(), 0) == 1;
      }
      X509_free(leaf);
    }
    SSL_shutdown(ssl.get());
  }
  ::close(fd);
}

}  // namespace

bool load_replay_input(const std::filesystem::path& path, std::size_t stream_index,
                       replay_input& out, std::string& error) {
  out = replay_input{};
  out.path = path.string();
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = path.string() + ": cannot open";
    return false;
  }
  std::array<std::uint8_t, 4> head{};
  f.read(reinterpret_cast<char*>(head.data()), head.size());
  const auto got = static_cast<std::size_t>(f.gcount());
  if (got == 4 && looks_like_capture(head)) {
    // 0A 0D 0D 0A reads the same in both byte orders: pcapng's section header.
    const bool pcapng = head[0] == 0x0A && head[1] == 0x0D && head[2] == 0x0D && head[3] == 0x0A;
    out.format = pcapng ? "pcapng" : "pcap";
    read_options o;
    o.stream_index = stream_index;
    tcp_stream s;
    if (!read_tcp_stream_file(path, o, s, error)) {
      return false;
    }
    if (s.client.bytes.empty()) {
      error = path.string() + ": the client sent nothing in TCP stream " +
              std::to_string(stream_index) + " (a server-speaks-first protocol?)";
      return false;
    }
    out.captured_client = s.client.ip + ":" + std::to_string(s.client.port);
    out.captured_server = s.server.ip + ":" + std::to_string(s.server.port);
    // The first flight: through the end of a complete ClientHello, or the bytes sent before
    // the server's reply grew.
    std::size_t cut = s.client.bytes.size();
    std::vector<std::uint8_t> scratch(tls::kScratchLen);
    tls::client_hello h;
    if (tls::parse_client_hello(s.client.bytes, scratch, h) == tls::hello_status::complete) {
      cut = h.tls_offset + h.wire_len;
    } else if (!s.client.segments.empty()) {
      const std::uint64_t first_peer = s.client.segments.front().peer_bytes_before;
      cut = 0;
      for (const segment& seg : s.client.segments) {
        if (seg.peer_bytes_before != first_peer) {
          break;
        }
        cut = seg.offset + seg.len;
      }
    }
    out.bytes.assign(s.client.bytes.begin(), s.client.bytes.begin() + static_cast<long>(cut));
    for (const segment& seg : s.client.segments) {
      if (seg.offset >= cut) {
        break;
      }
      segment t = seg;
      t.len = static_cast<std::uint32_t>(std::min<std::uint64_t>(seg.len, cut - seg.offset));
      out.segments.push_back(t);
    }
    return true;
  }
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    error = path.string() + ": " + ec.message();
    return false;
  }
  if (size == 0) {
    error = path.string() + ": empty file";
    return false;
  }
  if (size > kMaxRawFileBytes) {
    error = path.string() + ": " + std::to_string(size) + " bytes; a raw first flight is at most " +
            std::to_string(kMaxRawFileBytes);
    return false;
  }
  out.format = "raw";
  out.bytes.resize(static_cast<std::size_t>(size));
  f.clear();
  f.seekg(0);
  f.read(reinterpret_cast<char*>(out.bytes.data()), static_cast<std::streamsize>(size));
  if (static_cast<std::uint64_t>(f.gcount()) != size) {
    error = path.string() + ": short read";
    return false;
  }
  segment whole;
  whole.len = static_cast<std::uint32_t>(size);
  out.segments.push_back(whole);
  return true;
}

std::vector<planned_write> plan_writes(const replay_input& in, std::size_t total_len,
                                       const replay_options& opts) {
  // Wait points: where the captured client waited for reply bytes.
  struct barrier {
    std::size_t offset;
    std::uint64_t peer_bytes;
  };
  std::vector<barrier> barriers;
  std::uint64_t last_peer = in.segments.empty() ? 0 : in.segments.front().peer_bytes_before;
  for (const segment& s : in.segments) {
    if (s.peer_bytes_before > last_peer && s.offset > 0 && s.offset < total_len) {
      barriers.push_back({static_cast<std::size_t>(s.offset), s.peer_bytes_before});
    }
    last_peer = std::max(last_peer, s.peer_bytes_before);
  }

  std::vector<planned_write> sizes;
  switch (opts.chunks) {
    case chunking::whole:
      sizes.push_back({total_len, 0, {}});
      break;
    case chunking::sizes: {
      std::size_t at = 0;
      std::size_t i = 0;
      while (at < total_len && !opts.chunk_sizes.empty()) {
        std::size_t n = opts.chunk_sizes[std::min(i, opts.chunk_sizes.size() - 1)];
        n = std::max<std::size_t>(1, std::min(n, total_len - at));
        sizes.push_back({n, 0, {}});
        at += n;
        ++i;
      }
      break;
    }
    case chunking::captured: {
      std::size_t at = 0;
      std::chrono::nanoseconds total_gap{0};
      for (std::size_t i = 0; i < in.segments.size() && at < total_len; ++i) {
        std::size_t n = std::min<std::size_t>(in.segments[i].len, total_len - at);
        planned_write w{n, 0, {}};
        if (opts.timing && i > 0) {
          auto gap = std::chrono::nanoseconds(in.segments[i].ts_ns - in.segments[i - 1].ts_ns);
          gap =
              std::clamp<std::chrono::nanoseconds>(gap, std::chrono::nanoseconds(0), opts.max_gap);
          if (total_gap + gap > kMaxTotalGaps) {
            gap = std::chrono::nanoseconds(0);
          }
          total_gap += gap;
          w.gap = gap;
        }
        sizes.push_back(w);
        at += n;
      }
      // A rewritten hello may be longer than the capture: the rest goes in the last write.
      if (at < total_len) {
        if (sizes.empty()) {
          sizes.push_back({0, 0, {}});
        }
        sizes.back().len += total_len - at;
      }
      break;
    }
  }

  if (opts.split_segments != 0) {
    sizes.clear();
    for (const std::size_t n : segment_sizes(total_len, opts.split_segments)) {
      sizes.push_back({n, 0, {}});
    }
  } else if (opts.split_records != 0 && opts.chunks == chunking::captured) {
    // The captured segment lengths no longer match re-framed records: one write.
    sizes.assign(1, planned_write{total_len, 0, {}});
  }
  if (opts.gap.count() > 0) {
    for (std::size_t i = 1; i < sizes.size(); ++i) {
      sizes[i].gap = opts.gap;
    }
  }
  // Split writes at the barriers, and put each barrier's wait on the write that starts there.
  std::vector<planned_write> out;
  std::size_t at = 0;
  std::size_t b = 0;
  for (const planned_write& w : sizes) {
    std::size_t left = w.len;
    bool first_piece = true;
    while (left > 0) {
      while (b < barriers.size() && barriers[b].offset < at) {
        ++b;
      }
      std::size_t n = left;
      if (b < barriers.size() && barriers[b].offset > at && barriers[b].offset < at + left) {
        n = barriers[b].offset - at;
      }
      planned_write p{n, 0, first_piece ? w.gap : std::chrono::nanoseconds(0)};
      if (b < barriers.size() && barriers[b].offset == at) {
        p.wait_peer_bytes = barriers[b].peer_bytes;
      }
      out.push_back(p);
      at += n;
      left -= n;
      first_piece = false;
    }
  }
  return out;
}

bool replay(const replay_input& in, const replay_options& opts, verdict& out, std::string& error) {
  out = verdict{};
  out.target = opts.host + ":" + std::to_string(opts.port);
  std::vector<std::uint8_t> flight = in.bytes;
  if (opts.sni) {
    std::vector<std::uint8_t> rewritten;
    if (!rewrite_sni(in.bytes, *opts.sni, rewritten, error)) {
      error = in.path + ": " + error;
      return false;
    }
    flight = std::move(rewritten);
  }
  if (opts.split_records != 0) {
    std::vector<std::uint8_t> reframed;
    if (!split_records(flight, opts.split_records, opts.split_first, reframed, error)) {
      error = in.path + ": --split-records: " + error;
      return false;
    }
    flight = std::move(reframed);
  }
  const hello_facts hello = read_hello(flight);
  // As in the proxy: only a whole ClientHello (or one too large to inspect) makes a non-TLS
  // reply upstream_not_tls; bytes that merely start like TLS could be echoed back legitimately.
  const bool client_tls = tls::client_sent_tls(hello.status == tls::hello_status::complete,
                                               hello.status == tls::hello_status::too_large);
  out.client_protocol = std::string(
      tls::protocol_name(tls::detect_first_flight(flight, tls::direction::client_to_server).proto));
  if (hello.status != tls::hello_status::not_tls) {
    out.sni_sent = hello.sni;
  }
  const auto plan = plan_writes(in, flight.size(), opts);

  connector c;
  const auto syn_time = clock::now();
  if (!c.connect(opts.host, opts.port, opts.connect_timeout, out)) {
    return true;
  }
  std::unique_ptr<recorder> rec;
  if (opts.capture_path) {
    std::error_code ec;
    tcp::endpoint local = c.sock.local_endpoint(ec);
    tcp::endpoint remote = c.sock.remote_endpoint(ec);
    rec = recorder::open(*opts.capture_path, local, remote, kUnlimited, ec, syn_time);
    if (rec) {
      out.capture_file = opts.capture_path->string();
    } else {
      out.capture_error = opts.capture_path->string() + ": " + ec.message();
    }
  }

  std::vector<std::uint8_t> reply;
  std::string close;  // how the target ended: fin, rst, timeout, open
  std::size_t tls_reply_start = 0;
  steady::time_point first_sent{};
  std::optional<steady::time_point> first_reply;

  auto read_once = [&](steady::duration timeout) {
    const std::size_t before = reply.size();
    std::error_code ec;
    auto r = c.read_some(reply, opts.max_reply_bytes, timeout, ec);
    if (reply.size() > before) {
      if (!first_reply) {
        first_reply = steady::now();
      }
      if (rec) {
        rec->data(direction::server_to_client,
                  std::span<const std::uint8_t>(reply).subspan(before));
      }
    }
    if (r == connector::read_end::eof) {
      close = "fin";
      if (rec) {
        rec->fin(direction::server_to_client);
      }
    } else if (r == connector::read_end::reset) {
      close = "rst";
      if (rec) {
        rec->rst(direction::server_to_client);
      }
    } else if (r == connector::read_end::error) {
      close = "error";
      out.errno_name = errno_name(ec);
    }
    return r;
  };

  // Send.
  std::size_t at = 0;
  for (const planned_write& w : plan) {
    while (w.wait_peer_bytes > reply.size() && close.empty()) {
      if (read_once(opts.reply_timeout) == connector::read_end::timeout) {
        break;  // the target did not answer as the captured server did: send anyway
      }
    }
    if (!close.empty()) {
      break;
    }
    if (w.gap.count() > 0) {
      std::this_thread::sleep_for(w.gap);
    }
    if (hello.tls_offset > 0 && at == hello.tls_offset) {
      tls_reply_start = reply.size();
    }
    if (out.writes == 0) {
      first_sent = steady::now();
    }
    std::span<const std::uint8_t> piece(flight.data() + at, w.len);
    std::error_code ec = c.write_all(piece, opts.reply_timeout);
    if (ec) {
      // The target went away while we were still sending (RST, or EPIPE after its FIN).
      close = ec == asio::error::broken_pipe ? "fin" : "rst";
      out.errno_name = errno_name(ec);
      break;
    }
    if (rec) {
      rec->data(direction::client_to_server, piece);
    }
    at += w.len;
    out.bytes_sent += w.len;
    ++out.writes;
  }

  // Read the answer: up to reply_timeout for the first byte, then until it is enough to judge,
  // the target goes quiet for `settle`, closes, or the byte bound is reached.
  auto tls_part = [&] {
    return std::span<const std::uint8_t>(reply).subspan(std::min(tls_reply_start, reply.size()));
  };
  const auto read_deadline = steady::now() + opts.reply_timeout;
  for (int rounds = 0; close.empty() && rounds < 10000; ++rounds) {
    if (reply.size() >= opts.max_reply_bytes) {
      close = "open";
      break;
    }
    if (reply.size() > tls_reply_start && reply_decided(reply, tls_part())) {
      close = "open";
      break;
    }
    const bool have_reply = reply.size() > tls_reply_start;
    const auto now = steady::now();
    steady::duration wait = have_reply ? steady::duration(opts.settle) : read_deadline - now;
    if (wait <= steady::duration::zero()) {
      close = "timeout";
      break;
    }
    if (read_once(wait) == connector::read_end::timeout) {
      close = have_reply ? "open" : "timeout";
      break;
    }
  }
  if (close.empty()) {
    close = "open";
  }
  out.close = close;
  if (first_reply && out.writes > 0) {
    out.first_byte_ms =
        std::chrono::duration<double, std::milli>(*first_reply - first_sent).count();
  }
  classify(reply, tls_part(), client_tls, close, out);
  if (rec) {
    if (close == "open" || close == "timeout") {
      rec->fin(direction::client_to_server);  // the replay closes its side now
    }
    rec->close();
    if (rec->failed()) {
      out.capture_error = rec->error().message();
    }
  }
  std::error_code ignored;
  c.sock.close(ignored);

  if (opts.handshake) {
    handshake_result hs;
    do_handshake(in, flight, hello, opts, out, hs);
    out.handshake = hs;
  }
  return true;
}

void to_json(nlohmann::json& j, const handshake_result& v) {
  j = nlohmann::json::object();
  j["ok"] = v.ok;
  if (!v.error.empty()) {
    j["error"] = v.error;
  }
  j["sni"] = v.sni.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.sni);
  j["alpn_offered"] = v.alpn_offered;
  if (v.ok) {
    j["version"] = v.version;
    j["cipher"] = v.cipher;
    j["alpn"] = v.alpn.empty() ? nlohmann::json(nullptr) : nlohmann::json(v.alpn);
    j["verified"] = v.verified;
    if (!v.verify_error.empty()) {
      j["verify_error"] = v.verify_error;
    }
    if (v.name_matches) {
      j["name_matches"] = *v.name_matches;
      j["checked_name"] = v.checked_name;
    }
  }
  auto chain = nlohmann::json::array();
  for (const cert_info& c : v.chain) {
    chain.push_back({{"subject", c.subject},
                     {"issuer", c.issuer},
                     {"san", c.san},
                     {"not_before", c.not_before},
                     {"not_after", c.not_after}});
  }
  j["chain"] = chain;
}

void to_json(nlohmann::json& j, const verdict& v) {
  j = nlohmann::json::object();
  j["target"] = v.target;
  if (!v.ip.empty()) {
    j["upstream"] = {{"ip", v.ip}, {"port", v.port}};
  }
  nlohmann::json sent = {
      {"protocol", v.client_protocol}, {"bytes", v.bytes_sent}, {"writes", v.writes}};
  if (v.sni_sent) {
    sent["sni"] = *v.sni_sent;
  } else if (v.client_protocol == "tls") {
    sent["sni"] = nullptr;
  }
  j["sent"] = sent;
  nlohmann::json first = {{"protocol", v.upstream_protocol}, {"bytes", v.upstream_bytes}};
  if (!v.upstream_summary.empty()) {
    first["summary"] = v.upstream_summary;
  }
  j["upstream_first"] = first;
  if (v.has_server_tls) {
    nlohmann::json st = nlohmann::json::object();
    if (!v.server_version.empty()) {
      st["version"] = v.server_version;
    }
    if (!v.server_cipher.empty()) {
      st["cipher"] = v.server_cipher;
    }
    if (v.server_alert) {
      st["alert"] = {{"level", v.server_alert->level},
                     {"description", v.server_alert->description},
                     {"code", v.server_alert->code}};
    }
    if (v.server_certificate) {
      st["certificate"] = {{"subject", v.server_certificate->subject},
                           {"issuer", v.server_certificate->issuer},
                           {"san", v.server_certificate->san}};
    }
    j["server_tls"] = st;
  }
  nlohmann::json stop = {{"phase", v.phase}, {"reason", v.reason}, {"by", v.by}};
  if (!v.errno_name.empty()) {
    stop["errno"] = v.errno_name;
  }
  j["stop"] = stop;
  j["close"] = v.close;
  j["timing_ms"] = {
      {"connect", v.connect_ms ? nlohmann::json(*v.connect_ms) : nlohmann::json(nullptr)},
      {"first_byte", v.first_byte_ms ? nlohmann::json(*v.first_byte_ms) : nlohmann::json(nullptr)}};
  j["outcome"] = v.ok ? "ok" : "failed";
  if (v.handshake) {
    j["handshake"] = *v.handshake;
  }
  if (!v.capture_file.empty()) {
    j["capture"] = v.capture_file;
  }
  if (!v.capture_error.empty()) {
    j["capture_error"] = v.capture_error;
  }
}

std::string to_text(const verdict& v) {
  std::ostringstream o;
  o << "target    " << v.target;
  if (!v.ip.empty()) {
    o << " (" << v.ip << " port " << v.port << ")";
  }
  o << "\n";
  o << "sent      " << v.bytes_sent << " bytes of " << v.client_protocol << " in " << v.writes
    << (v.writes == 1 ? " write" : " writes");
  if (v.sni_sent) {
    o << ", SNI " << *v.sni_sent;
  } else if (v.client_protocol == "tls") {
    o << ", no SNI";
  }
  o << "\n";
  if (v.phase != kPhaseConnect) {
    o << "reply     " << v.upstream_bytes << " bytes, " << v.upstream_protocol;
    if (!v.upstream_summary.empty()) {
      o << ": " << v.upstream_summary;
    }
    o << "\n";
  }
  if (v.has_server_tls) {
    o << "server    ";
    if (!v.server_version.empty()) {
      o << "TLS " << v.server_version << " " << v.server_cipher;
    }
    if (v.server_alert) {
      o << (v.server_version.empty() ? "" : ", ") << "alert " << v.server_alert->level << " "
        << v.server_alert->description << " (" << v.server_alert->code << ")";
    }
    o << "\n";
    if (v.server_certificate) {
      o << "cert      " << v.server_certificate->subject << " (issuer "
        << v.server_certificate->issuer << ")\n";
    }
  }
  o << "stop      " << v.phase << " / " << v.reason << " (by " << v.by;
  if (!v.errno_name.empty()) {
    o << ", " << v.errno_name;
  }
  o << ")\n";
  o << "outcome   " << (v.ok ? "ok" : "failed") << "\n";
  if (v.handshake) {
    const handshake_result& h = *v.handshake;
    o << "handshake " << (h.ok ? "ok" : "failed");
    if (h.ok) {
      o << ", TLS " << h.version << " " << h.cipher;
      if (!h.alpn.empty()) {
        o << ", ALPN " << h.alpn;
      }
    } else {
      o << ": " << h.error;
    }
    o << "\n";
    o << "  sni     " << (h.sni.empty() ? "(none)" : h.sni) << "\n";
    for (std::size_t i = 0; i < h.chain.size(); ++i) {
      const cert_info& c = h.chain[i];
      o << "  cert[" << i << "] subject " << c.subject << "\n";
      o << "          issuer  " << c.issuer << "\n";
      if (!c.san.empty()) {
        o << "          san    ";
        for (const auto& s : c.san) {
          o << " " << s;
        }
        o << "\n";
      }
      o << "          valid   " << c.not_before << " .. " << c.not_after << "\n";
    }
    if (h.ok) {
      o << "  verify  " << (h.verified ? "ok" : "failed: " + h.verify_error) << "\n";
      if (h.name_matches) {
        o << "  name    " << h.checked_name
          << (*h.name_matches ? " matches the certificate" : " does NOT match the certificate")
          << "\n";
      }
    }
  }
  if (!v.capture_file.empty()) {
    o << "capture   " << v.capture_file << "\n";
  }
  if (!v.capture_error.empty()) {
    o << "capture   failed: " << v.capture_error << "\n";
  }
  return o.str();
}

}  // namespace linesman::capture
