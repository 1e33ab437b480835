// demo/peers: the in-process peers of `linesman demo`: a TLS server with a certificate made at
// start, a plaintext HTTP server, a closed port, a Traefik-like SNI router, and the TLS/plain
// clients that drive connections through linesman. Loopback only; every wait has a deadline.
//
// Control plane code: constructors throw std::runtime_error naming what failed (a bind, a key);
// the per-connection handlers never throw and end every connection within a few seconds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <openssl/ssl.h>
#include <openssl/x509.h>

namespace linesman::tools::demo {

using clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

// kAppHost: the host name the TLS server's certificate is for and the router knows.
inline constexpr const char* kAppHost = "app.example.test";
// kDefaultCertName: the subject CN Traefik uses for the certificate it answers with when no
// certificate (and no TCP router) matches the SNI.
inline constexpr const char* kDefaultCertName = "TRAEFIK DEFAULT CERT";

// self_signed: a P-256 key and a self-signed X.509 certificate for `cn` (also its DNS SAN),
// valid from an hour ago for a day. Owns both; throws std::runtime_error when OpenSSL fails.
class self_signed {
 public:
  explicit self_signed(const std::string& cn);
  ~self_signed();
  self_signed(const self_signed&) = delete;
  self_signed& operator=(const self_signed&) = delete;
  X509* cert() const { return cert_; }
  EVP_PKEY* key() const { return key_; }

 private:
  EVP_PKEY* key_ = nullptr;
  X509* cert_ = nullptr;
};

// unique_fd: owns a socket descriptor; closes it on destruction.
class unique_fd {
 public:
  unique_fd() = default;
  explicit unique_fd(int fd) : fd_(fd) {}
  ~unique_fd() { reset(); }
  unique_fd(unique_fd&& o) noexcept : fd_(o.release()) {}
  unique_fd& operator=(unique_fd&& o) noexcept {
    if (this != &o) {
      reset(o.release());
    }
    return *this;
  }
  int get() const { return fd_; }
  int release() {
    const int f = fd_;
    fd_ = -1;
    return f;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// closed_port: a loopback port nothing listens on (bound to learn a free one, then closed). Another
// program could take it in between; on a test machine that window is negligible.
std::uint16_t closed_port();

// peer_server: a loopback listener on a free port whose accept loop runs on its own thread and
// hands each connection to `handler` on a thread of its own. stop() (and the destructor) closes
// the listener and joins every thread; handlers must end on their own (they all have deadlines).
class peer_server {
 public:
  using handler = std::function<void(unique_fd)>;
  peer_server(std::string name, handler h);  // throws std::runtime_error when bind fails
  ~peer_server();
  peer_server(const peer_server&) = delete;
  peer_server& operator=(const peer_server&) = delete;
  std::uint16_t port() const { return port_; }
  void stop();

 private:
  void accept_loop();

  std::string name_;
  handler handler_;
  unique_fd listen_;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

// router_mode: how the Traefik-like router answers a ClientHello whose SNI matches no router.
enum class router_mode {
  close_unknown,  // read the hello and close without a byte (Traefik dropping a TCP router)
  default_cert,   // terminate TLS 1.2 itself with CN=TRAEFIK DEFAULT CERT, answer HTTP 404
  // one_segment: like default_cert, but the router looks at the first segment only (Traefik
  // before v3.6.11, HAProxy without tcp-request inspect-delay): a hello whose SNI comes later is
  // a hello without SNI, answered with the default certificate.
  one_segment,
};

// upstreams: every in-process peer of the demo. Construction starts them all; the destructor
// stops them (joins every thread). Throws std::runtime_error when one cannot start.
class upstreams {
 public:
  upstreams();
  ~upstreams();
  std::uint16_t tls_port() const { return tls_->port(); }
  std::uint16_t plain_port() const { return plain_->port(); }
  std::uint16_t router_port() const { return router_->port(); }
  std::uint16_t default_cert_router_port() const { return default_router_->port(); }
  std::uint16_t one_segment_router_port() const { return one_segment_router_->port(); }
  std::uint16_t closed() const { return closed_; }
  // app_cert: the TLS server's certificate, the trust anchor of the demo's clients.
  X509* app_cert() const { return app_.cert(); }
  void stop();

 private:
  void serve_tls(unique_fd fd);
  void serve_plain(unique_fd fd);
  void serve_router(unique_fd fd, router_mode mode);

  self_signed app_{kAppHost};
  self_signed default_{kDefaultCertName};
  SSL_CTX* app_ctx_ = nullptr;
  SSL_CTX* default_ctx_ = nullptr;
  std::uint16_t closed_ = 0;
  std::unique_ptr<peer_server> tls_, plain_, router_, default_router_, one_segment_router_;
};

// client_options: one client connection through linesman to 127.0.0.1:port.
struct client_options {
  std::uint16_t port = 0;
  bool tls = true;
  std::optional<std::string> sni{};  // nullopt: no server_name extension (an IP-literal client)
  std::vector<std::string> alpn{"http/1.1"};
  X509* trust = nullptr;  // the one certificate the client trusts (verifies the peer)
  std::string request{};  // sent after the handshake (or at once when !tls)
  ms deadline{3000};      // the whole exchange
  // raw_hello: when set, the client sends these bytes instead of doing a TLS handshake (a
  // recorded browser hello): the first split_at bytes, then after split_gap the rest, as two
  // TCP segments; then it reads what comes back until the peer closes or the deadline.
  std::span<const std::uint8_t> raw_hello{};
  std::size_t split_at = 0;
  ms split_gap{0};
};

// client_result: what the client saw. local_port pairs it with linesman's record (client.port).
struct client_result {
  std::uint16_t local_port = 0;
  bool handshake_ok = false;
  std::string saw;  // one line: the reply's first line, or the error the client got
};

// run_client: connects, handshakes (when tls), sends the request, reads until the peer closes,
// closes with a FIN after draining (never a RST). Never throws; ends within opt.deadline + 2 s.
client_result run_client(const client_options& opt);

}  // namespace linesman::tools::demo
