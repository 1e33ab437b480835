#include "tools/doctor/probe.hpp"

#include "tls/hex.hpp"
#include "tls/names.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <tuple>

#include <openssl/bio.h>
#include <openssl/ssl.h>

namespace linesman::tools::doctor {

namespace {

using clock = std::chrono::steady_clock;

// fd_guard: owns one socket descriptor; closes it when it goes out of scope.
class fd_guard {
 public:
  explicit fd_guard(int fd = -1) : fd_(fd) {}
  fd_guard(const fd_guard&) = delete;
  fd_guard& operator=(const fd_guard&) = delete;
  ~fd_guard() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
  }
  [[nodiscard]] int get() const { return fd_; }

 private:
  int fd_;
};

int remaining_ms(clock::time_point deadline) {
  const auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

// connect_to: a non-blocking connected socket, or -1 with `err` set. Tries each resolved address
// once, all within one deadline.
int connect_to(const std::string& host, std::uint16_t port, std::chrono::milliseconds timeout,
               bool& resolved, std::string& err) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const auto port_text = std::to_string(port);
  const int rc =
      ::getaddrinfo(host.empty() ? "127.0.0.1" : host.c_str(), port_text.c_str(), &hints, &res);
  if (rc != 0) {
    resolved = false;
    err = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -1;
  }
  resolved = true;
  const auto deadline = clock::now() + timeout;
  int result = -1;
  int tries = 0;
  for (auto* ai = res; ai != nullptr && tries < 8; ai = ai->ai_next, ++tries) {
    const int fd = ::socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      err = std::strerror(errno);
      continue;
    }
    if (::connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
      result = fd;
      break;
    }
    if (errno != EINPROGRESS) {
      err = std::strerror(errno);
      ::close(fd);
      continue;
    }
    pollfd p{fd, POLLOUT, 0};
    const int pr = ::poll(&p, 1, remaining_ms(deadline));
    if (pr <= 0) {
      err = "connect timed out after " + std::to_string(timeout.count()) + " ms";
      ::close(fd);
      continue;
    }
    int so = 0;
    socklen_t len = sizeof so;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &len);
    if (so != 0) {
      err = std::strerror(so);
      ::close(fd);
      continue;
    }
    result = fd;
    break;
  }
  ::freeaddrinfo(res);
  return result;
}

bool send_all(int fd, const std::string& data, clock::time_point deadline) {
  std::size_t off = 0;
  while (off < data.size()) {
    const auto n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return false;
    }
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) {
      return false;
    }
  }
  return true;
}

struct reply {
  std::string bytes;
  bool eof = false;
  bool reset = false;
  bool timed_out = false;
};

// read_reply: read until `want(bytes)` is satisfied, EOF, RST or the deadline; at most 16 KiB.
template <class Want>
reply read_reply(int fd, clock::time_point deadline, Want want) {
  reply r;
  char buf[4096];
  for (int rounds = 0; rounds < 64 && r.bytes.size() < 16384; ++rounds) {
    if (want(r.bytes)) {
      return r;
    }
    pollfd p{fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, remaining_ms(deadline));
    if (pr <= 0) {
      r.timed_out = true;
      return r;
    }
    const auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      r.bytes.append(buf, static_cast<std::size_t>(n));
    } else if (n == 0) {
      r.eof = true;
      return r;
    } else if (errno == ECONNRESET) {
      r.reset = true;
      return r;
    } else if (errno != EAGAIN && errno != EINTR) {
      r.reset = true;
      return r;
    }
  }
  return r;
}

// printable: a short escaped summary of a reply's first line.
std::string printable(std::string_view bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size() && out.size() < 60; ++i) {
    const auto c = static_cast<unsigned char>(bytes[i]);
    if (c == '\r' || c == '\n') {
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      tls::append_hex_escape(out, c);
    }
  }
  return out;
}

bool is_ip_literal(const std::string& s) {
  in6_addr a6{};
  in_addr a4{};
  return ::inet_pton(AF_INET, s.c_str(), &a4) == 1 || ::inet_pton(AF_INET6, s.c_str(), &a6) == 1;
}

// client_hello: OpenSSL's own first flight for `sni`, taken from a memory BIO (no socket).
std::string client_hello(const std::string& sni) {
  std::string out;
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) {
    return out;
  }
  SSL* ssl = SSL_new(ctx);
  if (ssl != nullptr) {
    BIO* rb = BIO_new(BIO_s_mem());
    BIO* wb = BIO_new(BIO_s_mem());
    SSL_set_bio(ssl, rb, wb);  // ssl owns both BIOs now
    if (!sni.empty() && !is_ip_literal(sni)) {
      SSL_set_tlsext_host_name(ssl, sni.c_str());
    }
    SSL_set_connect_state(ssl);
    (void)SSL_do_handshake(ssl);  // wants to read: the ClientHello is in `wb`
    char* data = nullptr;
    const long len = BIO_get_mem_data(wb, &data);
    if (len > 0 && data != nullptr) {
      out.assign(data, static_cast<std::size_t>(len));
    }
    SSL_free(ssl);
  }
  SSL_CTX_free(ctx);
  return out;
}

std::uint32_t be32(std::string_view b, std::size_t at) {
  return (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at])) << 24U) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16U) |
         (static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8U) |
         static_cast<std::uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

void put32(std::string& s, std::uint32_t v) {
  s.push_back(static_cast<char>(v >> 24U));
  s.push_back(static_cast<char>((v >> 16U) & 0xffU));
  s.push_back(static_cast<char>((v >> 8U) & 0xffU));
  s.push_back(static_cast<char>(v & 0xffU));
}

// pg_error_text: "FATAL 28000: message" from an ErrorResponse body (fields: type byte, C string).
std::string pg_error_text(std::string_view body) {
  std::string sev;
  std::string code;
  std::string msg;
  std::size_t i = 0;
  for (int fields = 0; fields < 32 && i < body.size() && body[i] != '\0'; ++fields) {
    const char type = body[i++];
    const auto end = body.find('\0', i);
    if (end == std::string_view::npos) {
      break;
    }
    const auto val = std::string(body.substr(i, end - i));
    if (type == 'S') {
      sev = val;
    } else if (type == 'C') {
      code = val;
    } else if (type == 'M') {
      msg = val;
    }
    i = end + 1;
  }
  return sev + " " + code + ": " + msg;
}

bool have_pg_message(const std::string& b) { return b.size() >= 5 && b.size() >= 1 + be32(b, 1); }

// probe_postgres: SSLRequest, then (on a new connection) a plaintext StartupMessage.
void probe_postgres(const std::string& host, std::uint16_t port, const probe_options& opts,
                    probe_result& out) {
  bool resolved = false;
  std::string err;
  {
    fd_guard fd(connect_to(host, port, opts.timeout, resolved, err));
    if (fd.get() < 0) {
      return;
    }
    const auto deadline = clock::now() + opts.timeout;
    std::string req;
    put32(req, 8);
    put32(req, 80877103);  // SSLRequest code (1234 << 16 | 5679)
    if (!send_all(fd.get(), req, deadline)) {
      return;
    }
    auto r = read_reply(fd.get(), deadline, [](const std::string& b) { return !b.empty(); });
    if (r.bytes.size() != 1 || (r.bytes[0] != 'S' && r.bytes[0] != 'N')) {
      return;
    }
    out.postgres = true;
    out.postgres_ssl = r.bytes[0];
  }
  fd_guard fd(connect_to(host, port, opts.timeout, resolved, err));
  if (fd.get() < 0) {
    return;
  }
  const auto deadline = clock::now() + opts.timeout;
  std::string body;
  put32(body, 196608);  // protocol 3.0
  for (const char* kv : {"user", "linesman_doctor", "database", "linesman_doctor",
                         "application_name", "linesman doctor"}) {
    body += kv;
    body.push_back('\0');
  }
  body.push_back('\0');
  std::string msg;
  put32(msg, static_cast<std::uint32_t>(body.size() + 4));
  msg += body;
  if (!send_all(fd.get(), msg, deadline)) {
    return;
  }
  auto r = read_reply(fd.get(), deadline, have_pg_message);
  if (!have_pg_message(r.bytes)) {
    return;
  }
  if (r.bytes[0] == 'E') {
    const auto len = be32(r.bytes, 1);
    out.postgres_error = pg_error_text(std::string_view(r.bytes).substr(5, len - 4));
  } else if (r.bytes[0] == 'R') {
    out.postgres_accepts_plaintext = true;
  }
}

}  // namespace

std::string_view tls_answer_name(tls_answer a) {
  switch (a) {
    case tls_answer::server_hello:
      return "a TLS ServerHello";
    case tls_answer::alert:
      return "a TLS alert";
    case tls_answer::plaintext:
      return "plaintext";
    case tls_answer::closed:
      return "a close without a byte";
    case tls_answer::reset:
      return "a reset";
    case tls_answer::silent:
      return "silence";
  }
  return "?";
}

probe_result probe_address(const std::string& host, std::uint16_t port, const std::string& sni,
                           const probe_options& opts) {
  probe_result out;
  {
    fd_guard fd(connect_to(host, port, opts.timeout, out.resolved, out.connect_error));
    if (fd.get() < 0) {
      return out;
    }
    out.reachable = true;
    const auto deadline = clock::now() + opts.timeout;
    const auto hello = client_hello(sni);
    if (hello.empty() || !send_all(fd.get(), hello, deadline)) {
      out.tls = tls_answer::reset;
      return out;
    }
    // Five bytes name the record type and version; seven are enough for an alert's description.
    auto r = read_reply(fd.get(), deadline, [](const std::string& b) { return b.size() >= 7; });
    const auto& b = r.bytes;
    if (b.size() >= 3 && b[0] == 0x16 && b[1] == 0x03) {
      out.tls = tls_answer::server_hello;
    } else if (b.size() >= 3 && b[0] == 0x15 && b[1] == 0x03) {
      out.tls = tls_answer::alert;
      out.tls_detail =
          b.size() >= 7
              ? std::string(tls::alert_description_name(static_cast<std::uint8_t>(b[6])).view())
              : "truncated alert";
    } else if (!b.empty()) {
      out.tls = tls_answer::plaintext;
      out.tls_detail = printable(b);
    } else if (r.reset) {
      out.tls = tls_answer::reset;
    } else if (r.eof) {
      out.tls = tls_answer::closed;
    } else {
      out.tls = tls_answer::silent;
    }
  }
  if (out.tls == tls_answer::closed || out.tls == tls_answer::reset ||
      out.tls == tls_answer::plaintext) {
    probe_postgres(host, port, opts, out);
  }
  return out;
}

std::vector<finding> run_probes(const traefik_config& cfg, const probe_options& opts) {
  std::vector<finding> out;
  std::map<std::tuple<std::string, std::uint16_t, std::string>, probe_result> cache;
  auto probe = [&](const std::string& host, std::uint16_t port,
                   const std::string& sni) -> const probe_result& {
    const auto key = std::make_tuple(host, port, sni);
    auto it = cache.find(key);
    if (it == cache.end()) {
      it = cache.emplace(key, probe_address(host, port, sni, opts)).first;
    }
    return it->second;
  };
  auto transport_tls = [&](const std::string& name) {
    for (const auto& [n, has_tls] : cfg.tcp_transports) {
      if (!name.empty() && (n == name || n + "@file" == name) && has_tls) {
        return true;
      }
    }
    return false;
  };

  for (const auto& s : cfg.tcp_services) {
    const auto sq = qualified(s.name, s.provider);
    struct user {
      const tcp_router* router;
      bool sends_tls;
      std::string sni;
    };
    std::vector<user> users;
    for (const auto& r : cfg.tcp_routers) {
      bool foreign = false;
      if (r.service.empty() || find_service(cfg, r.service, r.provider, foreign) != &s) {
        continue;
      }
      std::string sni;
      if (auto p = parse_rule(r.rule); p.expr) {
        const auto info = sni_info(*p.expr);
        if (!info.literals.empty()) {
          sni = info.literals.front();
        }
      }
      users.push_back({&r, r.tls.passthrough || transport_tls(s.servers_transport), sni});
    }
    if (users.empty()) {
      users.push_back({nullptr, false, ""});
    }
    for (const auto& srv : s.servers) {
      if (srv.url_key || srv.port_only) {
        continue;  // reported by check_config; nothing we may dial
      }
      std::string why;
      const auto hp = parse_host_port(srv.address, why);
      if (!hp || hp->host.empty()) {
        continue;
      }
      for (const auto& u : users) {
        const auto& res = probe(hp->host, hp->port, u.sni);
        const std::string rq =
            u.router != nullptr ? qualified(u.router->name, u.router->provider) : std::string{};
        std::string ep;
        if (u.router != nullptr) {
          const auto eps =
              router_entrypoints(cfg, u.router->has_entry_points, u.router->entry_points);
          ep = eps.empty() ? "" : eps.front();
        }
        auto add = [&](severity lvl, const char* code, std::string msg, std::string fix) {
          out.push_back({lvl, code, srv.loc, ep, rq, sq, std::move(msg), std::move(fix)});
        };
        const std::string who = "server " + srv.address + " of " + sq;
        if (!res.resolved) {
          add(severity::warning, "backend_unresolved",
              who + ": " + res.connect_error +
                  " (from this machine; Traefik may resolve it in "
                  "another network, e.g. a Docker network)",
              "check the host name, or run doctor where Traefik runs");
          continue;
        }
        if (!res.reachable) {
          add(severity::error, "backend_unreachable",
              who + " is not reachable from this machine: " + res.connect_error,
              "start the backend or fix the address; Traefik's dial fails the same way and it "
              "closes the client's connection");
          continue;
        }
        if (u.router == nullptr) {
          continue;  // no router: reachability is all we can judge
        }
        const bool speaks_tls = res.tls == tls_answer::server_hello || res.tls == tls_answer::alert;
        std::string answer = std::string(tls_answer_name(res.tls));
        if (!res.tls_detail.empty()) {
          answer += " (" + res.tls_detail + ")";
        }
        if (u.sends_tls && !speaks_tls) {
          std::string msg = "router " + rq +
                            (u.router->tls.passthrough ? " passes the client's TLS through"
                                                       : " sends TLS (serversTransport)") +
                            ", but " + who + " answered a ClientHello" +
                            (u.sni.empty() ? "" : " for " + u.sni) + " with " + answer +
                            ": it does not speak TLS";
          std::string fix =
              "terminate TLS at Traefik instead (tls: {} without passthrough) so the backend "
              "gets plaintext, or enable TLS on the backend";
          if (res.postgres) {
            msg += "; it is PostgreSQL, which answers an SSLRequest with '" +
                   std::string(1, res.postgres_ssl) +
                   "' but does not accept a direct ClientHello (direct TLS needs PostgreSQL 17 "
                   "with sslnegotiation=direct)";
          }
          add(severity::error, "backend_not_tls", msg, fix);
        } else if (!u.sends_tls && res.tls == tls_answer::server_hello) {
          add(severity::error, "backend_requires_tls",
              "router " + rq +
                  (u.router->tls.present ? " terminates TLS and sends plaintext"
                                         : " sends the client's plaintext") +
                  ", but " + who + " speaks TLS (it answered a ClientHello with a ServerHello)",
              u.router->tls.present
                  ? "use tls: {passthrough: true} so the client's TLS reaches the backend, or a "
                    "tcp.serversTransports entry with tls for this service"
                  : "clients must speak TLS: enable tls on the router (passthrough) or point the "
                    "service at the backend's plaintext port");
        } else if (u.sends_tls && res.tls == tls_answer::alert) {
          add(severity::warning, "backend_tls_alert",
              who + " speaks TLS but refused the ClientHello" +
                  (u.sni.empty() ? "" : " for " + u.sni) + " with alert " + res.tls_detail,
              "check the backend's certificate and server names for this SNI");
        } else if (!u.sends_tls && res.postgres && !res.postgres_error.empty() &&
                   (res.postgres_error.find("pg_hba.conf") != std::string::npos ||
                    res.postgres_error.find("encryption") != std::string::npos ||
                    res.postgres_error.find("SSL") != std::string::npos)) {
          add(severity::error, "backend_refused",
              "router " + rq + " sends plaintext to PostgreSQL " + who +
                  ", which refuses a plaintext startup: " + res.postgres_error,
              "PostgreSQL accepts only TLS here (hostssl in pg_hba.conf) and Traefik's connection "
              "to it is plaintext: allow Traefik's address with a host line in pg_hba.conf, or let "
              "the clients' own TLS reach PostgreSQL instead of terminating it at Traefik");
        }
      }
    }
  }
  return out;
}

}  // namespace linesman::tools::doctor
