#include "tools/demo/peers.hpp"

#include "tls/client_hello.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>

namespace linesman::tools::demo {
namespace {

// kSlice: the longest single poll() inside a deadline loop, so stop flags are seen promptly.
constexpr int kSliceMs = 50;

int ms_left(clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<ms>(deadline - clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(left);
}

// wait_fd: poll one descriptor for `events` until the deadline. True when ready (or hung up).
bool wait_fd(int fd, short events, clock::time_point deadline) {
  for (;;) {
    const int left = ms_left(deadline);
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, left);
    if (n > 0) {
      return true;
    }
    if (n == 0 || (n < 0 && errno != EINTR)) {
      return false;
    }
  }
}

// set_timeouts: SO_RCVTIMEO/SO_SNDTIMEO, so blocking OpenSSL calls on the fd are bounded too.
void set_timeouts(int fd, ms t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

sockaddr_in loopback(std::uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

std::uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    return 0;
  }
  return ntohs(a.sin_port);
}

// drain_and_close: half-close, read whatever is still coming until EOF or the deadline, close.
// Reading first keeps the kernel from answering unread bytes with a RST: every peer here ends
// with a FIN, so linesman's record shows the failure it stands for, not a reset.
void drain_and_close(unique_fd fd, ms limit) {
  if (fd.get() < 0) {
    return;
  }
  ::shutdown(fd.get(), SHUT_WR);
  const auto deadline = clock::now() + limit;
  std::array<char, 4096> buf{};
  while (wait_fd(fd.get(), POLLIN, deadline)) {
    const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
      break;
    }
  }
}

bool send_all(int fd, std::string_view data, clock::time_point deadline) {
  while (!data.empty()) {
    if (!wait_fd(fd, POLLOUT, deadline)) {
      return false;
    }
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
        continue;
      }
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

std::string ssl_error_text(const SSL* ssl, int rc) {
  const int e = SSL_get_error(ssl, rc);
  const unsigned long code = ERR_peek_last_error();
  std::string out;
  if (code != 0) {
    std::array<char, 256> buf{};
    ERR_error_string_n(code, buf.data(), buf.size());
    out = buf.data();
  } else if (e == SSL_ERROR_SYSCALL) {
    out = errno != 0 ? std::string(std::strerror(errno)) : "connection closed during handshake";
  } else if (e == SSL_ERROR_ZERO_RETURN) {
    out = "peer closed the TLS session";
  } else {
    out = "TLS error " + std::to_string(e);
  }
  if (ssl != nullptr) {
    const long v = SSL_get_verify_result(ssl);
    if (v != X509_V_OK) {
      out += " (" + std::string(X509_verify_cert_error_string(v)) + ")";
    }
  }
  ERR_clear_error();
  return out;
}

struct ssl_ptr {
  SSL* p = nullptr;
  explicit ssl_ptr(SSL* s) : p(s) {}
  ~ssl_ptr() { SSL_free(p); }
  ssl_ptr(const ssl_ptr&) = delete;
  ssl_ptr& operator=(const ssl_ptr&) = delete;
};

// read_request: reads until a blank line ends an HTTP request head, EOF, or the deadline.
std::string read_request(SSL* ssl) {
  std::string got;
  std::array<char, 2048> buf{};
  while (got.find("\r\n\r\n") == std::string::npos && got.size() < 16384) {
    const int n = SSL_read(ssl, buf.data(), static_cast<int>(buf.size()));
    if (n <= 0) {
      break;
    }
    got.append(buf.data(), static_cast<std::size_t>(n));
  }
  return got;
}

SSL_CTX* server_ctx(const self_signed& id, bool tls12_only) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr || SSL_CTX_use_certificate(ctx, id.cert()) != 1 ||
      SSL_CTX_use_PrivateKey(ctx, id.key()) != 1) {
    SSL_CTX_free(ctx);
    throw std::runtime_error("demo: cannot set up a TLS server context");
  }
  if (tls12_only) {
    SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
  }
  SSL_CTX_set_alpn_select_cb(
      ctx,
      [](SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
         unsigned int inlen, void*) {
        static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
        unsigned char* sel = nullptr;
        if (SSL_select_next_proto(&sel, outlen, kHttp11, sizeof kHttp11, in, inlen) ==
            OPENSSL_NPN_NEGOTIATED) {
          *out = sel;
          return SSL_TLSEXT_ERR_OK;
        }
        return SSL_TLSEXT_ERR_NOACK;
      },
      nullptr);
  return ctx;
}

// serve_https: handshake, read one request head, answer `response`, close_notify, FIN.
void serve_https(SSL_CTX* ctx, unique_fd fd, std::string_view response) {
  set_timeouts(fd.get(), ms(3000));
  {
    ssl_ptr ssl(SSL_new(ctx));
    if (ssl.p != nullptr && SSL_set_fd(ssl.p, fd.get()) == 1 && SSL_accept(ssl.p) == 1) {
      (void)read_request(ssl.p);
      (void)SSL_write(ssl.p, response.data(), static_cast<int>(response.size()));
      (void)SSL_shutdown(ssl.p);
    }
    ERR_clear_error();
  }
  drain_and_close(std::move(fd), ms(2000));
}

// relay: copies both ways between a and b until both directions ended or the deadline; an EOF
// from one side becomes a half-close toward the other, as a TCP proxy does.
void relay(int a, int b, clock::time_point deadline) {
  bool a_open = true;  // a -> b still flowing
  bool b_open = true;  // b -> a still flowing
  std::array<char, 16384> buf{};
  while ((a_open || b_open) && clock::now() < deadline) {
    std::array<pollfd, 2> p{pollfd{a, static_cast<short>(a_open ? POLLIN : 0), 0},
                            pollfd{b, static_cast<short>(b_open ? POLLIN : 0), 0}};
    const int n = ::poll(p.data(), p.size(), std::min(kSliceMs, ms_left(deadline)));
    if (n < 0 && errno != EINTR) {
      return;
    }
    for (int i = 0; i < 2; ++i) {
      const int from = i == 0 ? a : b;
      const int to = i == 0 ? b : a;
      bool& open = i == 0 ? a_open : b_open;
      if (!open || (p[static_cast<std::size_t>(i)].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
        continue;
      }
      const ssize_t r = ::recv(from, buf.data(), buf.size(), MSG_DONTWAIT);
      if (r > 0) {
        if (!send_all(to, {buf.data(), static_cast<std::size_t>(r)}, deadline)) {
          return;
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
        open = false;
        ::shutdown(to, SHUT_WR);
      }
    }
  }
}

}  // namespace

void unique_fd::reset(int fd) {
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = fd;
}

self_signed::self_signed(const std::string& cn) {
  key_ = EVP_EC_gen("P-256");
  cert_ = X509_new();
  bool ok = key_ != nullptr && cert_ != nullptr;
  if (ok) {
    X509_set_version(cert_, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert_), static_cast<long>(::getpid()) + 1);
    X509_gmtime_adj(X509_getm_notBefore(cert_), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert_), 86400);
    X509_NAME* name = X509_get_subject_name(cert_);
    ok = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                    0) == 1 &&
         X509_set_issuer_name(cert_, name) == 1 && X509_set_pubkey(cert_, key_) == 1;
  }
  if (ok && cn.find(' ') == std::string::npos) {
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert_, cert_, nullptr, nullptr, 0);
    const std::string san = "DNS:" + cn;
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, NID_subject_alt_name, san.c_str());
    ok = ext != nullptr && X509_add_ext(cert_, ext, -1) == 1;
    X509_EXTENSION_free(ext);
  }
  ok = ok && X509_sign(cert_, key_, EVP_sha256()) > 0;
  if (!ok) {
    X509_free(cert_);
    EVP_PKEY_free(key_);
    ERR_clear_error();
    throw std::runtime_error("demo: cannot make a certificate for '" + cn + "'");
  }
}

self_signed::~self_signed() {
  X509_free(cert_);
  EVP_PKEY_free(key_);
}

std::uint16_t closed_port() {
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = loopback(0);
  if (fd.get() < 0 || ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    throw std::runtime_error(std::string("demo: cannot bind 127.0.0.1:0: ") + std::strerror(errno));
  }
  return local_port(fd.get());  // closed when fd goes out of scope, never listened on
}

peer_server::peer_server(std::string name, handler h)
    : name_(std::move(name)), handler_(std::move(h)) {
  listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = loopback(0);
  if (listen_.get() < 0 ||
      ::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(listen_.get(), 64) != 0) {
    throw std::runtime_error("demo: " + name_ +
                             ": cannot listen on 127.0.0.1:0: " + std::strerror(errno));
  }
  port_ = local_port(listen_.get());
  acceptor_ = std::thread([this] { accept_loop(); });
}

peer_server::~peer_server() { stop(); }

void peer_server::accept_loop() {
  while (!stopping_.load()) {
    pollfd p{listen_.get(), POLLIN, 0};
    if (::poll(&p, 1, kSliceMs) <= 0) {
      continue;
    }
    const int fd = ::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      continue;
    }
    std::lock_guard lock(mu_);
    workers_.emplace_back([this, fd] { handler_(unique_fd(fd)); });
  }
}

void peer_server::stop() {
  stopping_.store(true);
  if (acceptor_.joinable()) {
    acceptor_.join();
  }
  std::vector<std::thread> ws;
  {
    std::lock_guard lock(mu_);
    ws.swap(workers_);
  }
  for (auto& w : ws) {
    w.join();
  }
  listen_.reset();
}

upstreams::upstreams() {
  app_ctx_ = server_ctx(app_, false);
  default_ctx_ = server_ctx(default_, true);
  closed_ = closed_port();
  tls_ = std::make_unique<peer_server>("tls server",
                                       [this](unique_fd fd) { serve_tls(std::move(fd)); });
  plain_ = std::make_unique<peer_server>("plaintext server",
                                         [this](unique_fd fd) { serve_plain(std::move(fd)); });
  router_ = std::make_unique<peer_server>(
      "router", [this](unique_fd fd) { serve_router(std::move(fd), router_mode::close_unknown); });
  default_router_ = std::make_unique<peer_server>("default-cert router", [this](unique_fd fd) {
    serve_router(std::move(fd), router_mode::default_cert);
  });
  one_segment_router_ = std::make_unique<peer_server>("one-segment router", [this](unique_fd fd) {
    serve_router(std::move(fd), router_mode::one_segment);
  });
}

upstreams::~upstreams() {
  stop();
  SSL_CTX_free(app_ctx_);
  SSL_CTX_free(default_ctx_);
}

void upstreams::stop() {
  // Routers first: they dial the TLS server.
  for (auto* s : {router_.get(), default_router_.get(), one_segment_router_.get(), plain_.get(),
                  tls_.get()}) {
    if (s != nullptr) {
      s->stop();
    }
  }
}

void upstreams::serve_tls(unique_fd fd) {
  serve_https(app_ctx_, std::move(fd),
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n"
              "Connection: close\r\n\r\nok\n");
}

void upstreams::serve_plain(unique_fd fd) {
  // A plain HTTP server reading TLS bytes: whatever arrives, the answer is 400.
  const auto deadline = clock::now() + ms(2000);
  std::array<char, 4096> buf{};
  if (wait_fd(fd.get(), POLLIN, deadline)) {
    while (::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT) > 0) {
    }
  }
  (void)send_all(fd.get(),
                 "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n"
                 "Connection: close\r\n\r\n400 Bad Request",
                 deadline);
  drain_and_close(std::move(fd), ms(2000));
}

void upstreams::serve_router(unique_fd fd, router_mode mode) {
  // Peek the ClientHello (leave it in the socket: forwarding or terminating reads it again).
  const auto deadline = clock::now() + ms(3000);
  std::vector<std::uint8_t> in(tls::kScratchLen + 5);
  std::vector<std::uint8_t> scratch(tls::kScratchLen);
  tls::client_hello hello;
  tls::hello_status st = tls::hello_status::incomplete;
  std::size_t have = 0;
  while (st == tls::hello_status::incomplete && wait_fd(fd.get(), POLLIN, deadline)) {
    const ssize_t n = ::recv(fd.get(), in.data(), in.size(), MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0) {
      break;  // EOF or error before a whole hello
    }
    if (static_cast<std::size_t>(n) == have) {
      ::usleep(5000);  // nothing new yet: peeked data stays readable, so poll would spin
      continue;
    }
    have = static_cast<std::size_t>(n);
    st = tls::parse_client_hello({in.data(), have}, scratch, hello);
    if (mode == router_mode::one_segment) {
      break;  // what the first segment holds is all this router ever looks at
    }
  }
  std::string sni;
  if (st == tls::hello_status::complete && !hello.sni.empty()) {
    sni.assign(hello.sni.begin(), hello.sni.end());
  }
  if (sni == kAppHost) {
    // A HostSNI(`app.example.test`) TCP router with tls.passthrough: forward the bytes as they are.
    unique_fd up(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const sockaddr_in a = loopback(tls_->port());
    if (up.get() >= 0 &&
        ::connect(up.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) {
      relay(fd.get(), up.get(), clock::now() + ms(5000));
    }
    return;
  }
  if (mode == router_mode::default_cert || mode == router_mode::one_segment) {
    // No TCP router matched: Traefik's TLS handling answers with its default certificate (TLS 1.2
    // here, so the certificate crosses the wire in clear) and the HTTP routers find nothing.
    serve_https(default_ctx_, std::move(fd),
                "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
                "Content-Length: 19\r\nConnection: close\r\n\r\n404 page not found\n");
    return;
  }
  // No router for this SNI (a Host() rule on a TCP router, a domain HostSNI without tls): Traefik
  // has read the hello and closes without a byte. Consume what was peeked so the close is a FIN.
  if (have > 0) {
    (void)::recv(fd.get(), in.data(), have, MSG_DONTWAIT);
  }
  fd.reset();
}

namespace {

// send_raw_hello: opt.raw_hello in two segments (split_at, then the rest after split_gap), then
// reads until the peer closes or the deadline; returns what the client saw.
std::string send_raw_hello(int fd, const client_options& opt, clock::time_point deadline) {
  const int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  const auto bytes = opt.raw_hello;
  const std::size_t split = std::min(opt.split_at, bytes.size());
  const auto as_text = [](std::span<const std::uint8_t> b) {
    return std::string_view(reinterpret_cast<const char*>(b.data()), b.size());
  };
  if (!send_all(fd, as_text(bytes.first(split)), deadline)) {
    return "send failed";
  }
  std::this_thread::sleep_for(opt.split_gap);
  if (!send_all(fd, as_text(bytes.subspan(split)), deadline)) {
    return "send failed";
  }
  std::size_t got = 0;
  std::array<char, 4096> buf{};
  while (wait_fd(fd, POLLIN, deadline)) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) {
      break;
    }
    got += static_cast<std::size_t>(n);
    // The server's first flight comes in one burst; after it the server waits for a key
    // exchange this client cannot send, so stop soon after.
    deadline = std::min(deadline, clock::now() + ms(200));
  }
  return got == 0 ? std::string("no reply")
                  : "a TLS reply of " + std::to_string(got) +
                        " bytes (a replayed hello cannot finish the handshake)";
}

}  // namespace

client_result run_client(const client_options& opt) {
  client_result out;
  const auto deadline = clock::now() + opt.deadline;
  unique_fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const sockaddr_in a = loopback(opt.port);
  if (fd.get() < 0) {
    out.saw = std::string("socket: ") + std::strerror(errno);
    return out;
  }
  set_timeouts(fd.get(), opt.deadline);
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) {
    out.saw = std::string("connect: ") + std::strerror(errno);
    return out;
  }
  out.local_port = local_port(fd.get());
  std::string reply;
  if (!opt.raw_hello.empty()) {
    out.saw = send_raw_hello(fd.get(), opt, deadline);
  } else if (!opt.tls) {
    if (send_all(fd.get(), opt.request, deadline)) {
      std::array<char, 4096> buf{};
      while (reply.size() < 65536 && wait_fd(fd.get(), POLLIN, deadline)) {
        const ssize_t n = ::recv(fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
        if (n <= 0) {
          break;
        }
        reply.append(buf.data(), static_cast<std::size_t>(n));
      }
    }
  } else {
    SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == nullptr) {
      out.saw = "cannot create a TLS client context";
      return out;
    }
    if (opt.trust != nullptr) {
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), opt.trust);
      SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    }
    std::string alpn;
    for (const auto& p : opt.alpn) {
      alpn.push_back(static_cast<char>(p.size()));
      alpn += p;
    }
    {
      ssl_ptr ssl(SSL_new(ctx));
      SSL_set_fd(ssl.p, fd.get());
      if (opt.sni) {
        SSL_set_tlsext_host_name(ssl.p, opt.sni->c_str());
        if (opt.trust != nullptr) {
          SSL_set1_host(ssl.p, opt.sni->c_str());
        }
      }
      if (!alpn.empty()) {
        SSL_set_alpn_protos(ssl.p, reinterpret_cast<const unsigned char*>(alpn.data()),
                            static_cast<unsigned>(alpn.size()));
      }
      errno = 0;
      const int rc = SSL_connect(ssl.p);
      if (rc == 1) {
        out.handshake_ok = true;
        (void)SSL_write(ssl.p, opt.request.data(), static_cast<int>(opt.request.size()));
        std::array<char, 4096> buf{};
        while (reply.size() < 65536) {
          const int n = SSL_read(ssl.p, buf.data(), static_cast<int>(buf.size()));
          if (n <= 0) {
            break;
          }
          reply.append(buf.data(), static_cast<std::size_t>(n));
        }
        (void)SSL_shutdown(ssl.p);
      } else {
        out.saw = "TLS handshake failed: " + ssl_error_text(ssl.p, rc);
      }
      ERR_clear_error();
    }
    SSL_CTX_free(ctx);
  }
  if (out.saw.empty()) {
    const auto eol = reply.find_first_of("\r\n");
    out.saw = reply.empty() ? "no reply" : reply.substr(0, eol);
  }
  drain_and_close(std::move(fd), ms(2000));
  return out;
}

}  // namespace linesman::tools::demo
