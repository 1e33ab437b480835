#include "proxy/admin.hpp"

#include "proxy/access_record.hpp"
#include "proxy/admin_faults.hpp"
#include "proxy/log_sink.hpp"
#include "proxy/port_owner.hpp"
#include "proxy/record_ring.hpp"
#include "proxy/server.hpp"
#include "proxy/web_assets.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string_view>
#include <thread>
#include <variant>

#include <httplib.h>

namespace linesman::proxy {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) {
    return static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  });
  return s;
}

bool sni_matches(const std::string& sni, const std::string& pattern) {
  const auto s = lower(sni);
  const auto p = lower(pattern);
  if (p.size() > 2 && p.starts_with("*.")) {
    const auto suffix = p.substr(1);
    return s.size() > suffix.size() && s.ends_with(suffix);
  }
  return s == p;
}

// The admin port faces whoever can reach it (--admin-allow-remote): every request is bounded.
// kRequestBytes: all bytes read from one connection (request line and headers; no endpoint takes
// a body). kRequestTime: the whole request must arrive within this (slowloris clients that
// trickle a byte at a time are cut, whatever their pace). kWriteTime: to send the answer.
// kAdminThreads: connections served at once; one request per connection (no keep-alive), so a
// thread is never held longer than kRequestTime + kWriteTime.
constexpr std::size_t kRequestBytes = 64 * 1024;
constexpr std::size_t kPayloadBytes = 4096;
constexpr auto kRequestTime = std::chrono::seconds(3);
constexpr auto kWriteTime = std::chrono::seconds(5);
constexpr std::size_t kAdminThreads = 16;

using steady = std::chrono::steady_clock;

// wait_fd: poll `fd` for `events` until `deadline`. False on timeout or error.
bool wait_fd(int fd, short events, steady::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
    if (left <= 0) {
      return false;
    }
    pollfd p{fd, events, 0};
    const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n > 0) {
      return true;
    }
    if (n < 0 && errno != EINTR) {
      return false;
    }
  }
}

void endpoint_of(int fd, bool peer, std::string& ip, int& port) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  const int rc = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                      : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  char buf[INET6_ADDRSTRLEN] = {};
  if (rc == 0 && ss.ss_family == AF_INET) {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
    ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
    port = ntohs(a->sin_port);
  } else if (rc == 0 && ss.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
    ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
    port = ntohs(a->sin6_port);
  }
  ip = buf;
}

}  // namespace

// admin_http: named, not anonymous, because admin_server::impl (external linkage) holds a
// bounded_server.
namespace admin_http {

// bounded_stream: one admin connection as httplib reads it, with kRequestBytes and kRequestTime
// for everything it reads and kWriteTime for the answer. Borrows the socket.
class bounded_stream : public httplib::Stream {
 public:
  explicit bounded_stream(int fd)
      : fd_(fd), read_deadline_(steady::now() + kRequestTime), write_deadline_(read_deadline_) {}

  bool is_readable() const override { return wait_fd(fd_, POLLIN, read_deadline_); }
  bool is_writable() const override { return wait_fd(fd_, POLLOUT, write_deadline_); }
  ssize_t read(char* ptr, size_t size) override {
    if (read_ >= kRequestBytes || !is_readable()) {
      return -1;
    }
    const ssize_t n = ::recv(fd_, ptr, std::min(size, kRequestBytes - read_), 0);
    if (n > 0) {
      read_ += static_cast<std::size_t>(n);
    }
    return n;
  }
  ssize_t write(const char* ptr, size_t size) override {
    if (!writing_) {  // the answer gets its own time, counted from its first byte
      writing_ = true;
      write_deadline_ = steady::now() + kWriteTime;
    }
    if (!is_writable()) {
      return -1;
    }
    return ::send(fd_, ptr, size, MSG_NOSIGNAL);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    endpoint_of(fd_, true, ip, port);
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    endpoint_of(fd_, false, ip, port);
  }
  socket_t socket() const override { return fd_; }

 private:
  int fd_;
  steady::time_point read_deadline_;
  steady::time_point write_deadline_;
  std::size_t read_ = 0;
  bool writing_ = false;
};

// bounded_server: httplib's routing and handlers over bounded_stream, one request per connection.
class bounded_server : public httplib::Server {
 private:
  bool process_and_close_socket(socket_t sock) override {
    bool ok = false;
    {
      bounded_stream strm(sock);
      bool closed = false;
      ok = process_request(strm, /*close_connection=*/true, closed, nullptr);
    }
    ::shutdown(sock, SHUT_RDWR);
    ::close(sock);
    return ok;
  }
};

}  // namespace admin_http

namespace {

// dump: JSON text; bytes that are not UTF-8 (a query, a peer's SNI) become U+FFFD as in records.
std::string dump(const nlohmann::json& j) {
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

void send_json(httplib::Response& res, int status, const nlohmann::json& j) {
  res.status = status;
  res.set_content(dump(j), "application/json");
}

// has_body: the request announces a body (no admin endpoint takes one).
bool has_body(const httplib::Request& req) {
  if (req.has_header("Transfer-Encoding")) {
    return true;
  }
  const auto len = req.get_header_value("Content-Length");
  return !len.empty() && len.find_first_not_of('0') != std::string::npos;
}

void send_error(httplib::Response& res, int status, const std::string& msg) {
  send_json(res, status, nlohmann::json{{"error", msg}});
}

// query_error: why /api/connections' query is refused, empty when it is fine: only its three
// parameters, each once (which of two values would count?), as short UTF-8 text without
// control characters (a filter that can never match is a mistake worth saying).
std::string query_error(const httplib::Request& req) {
  constexpr std::size_t kMaxValue = 256;
  for (const auto& [k, v] : req.params) {
    if (k != "phase" && k != "older_than" && k != "sni") {
      return "unknown query parameter (use phase, older_than, sni)";
    }
    if (req.get_param_value_count(k) != 1) {
      return k + ": given more than once";
    }
    if (v.size() > kMaxValue) {
      return k + ": longer than " + std::to_string(kMaxValue) + " bytes";
    }
    if (check_text(v) != text_fault::none) {
      return k + ": not valid UTF-8 text (or holds a control character)";
    }
  }
  return {};
}

// page_asset: the embedded file served at `path` ("/" is index.html), or null. The page's files
// hold no data (every figure comes from the API, behind the token), so they need no token: a
// browser cannot send a header when it loads a page.
const web_asset* page_asset(const std::string& path) {
  const std::string_view want = path == "/" ? std::string_view("/index.html") : path;
  for (const auto& a : web_assets()) {
    if (a.path == want) {
      return &a;
    }
  }
  return nullptr;
}

// browser_host_ok: a request a browser made (it sends Sec-Fetch-* or Origin) must name the admin
// port by an IP address or localhost. A web page elsewhere that rebinds its own DNS name to
// 127.0.0.1 would otherwise read the API as same-origin; other clients (curl, linesman top,
// Prometheus) are not affected.
bool browser_host_ok(const httplib::Request& req) {
  if (!req.has_header("Sec-Fetch-Mode") && !req.has_header("Sec-Fetch-Site") &&
      !req.has_header("Origin")) {
    return true;
  }
  std::string host = lower(req.get_header_value("Host"));
  if (!host.empty() && host.front() == '[') {
    const auto close = host.find(']');
    if (close == std::string::npos) {
      return false;
    }
    in6_addr a6{};
    return ::inet_pton(AF_INET6, host.substr(1, close - 1).c_str(), &a6) == 1;
  }
  if (const auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  in_addr a4{};
  return host == "localhost" || ::inet_pton(AF_INET, host.c_str(), &a4) == 1;
}

// cross_site_write: a request that would change something (POST, DELETE: /api/faults) sent by
// a browser from another site. A form or no-cors fetch on any web page can POST a text/plain
// body such as {"spec":"latency:ms=100"} to a loopback port without a preflight; the browser
// says where it came from (Sec-Fetch-Site, Origin), so such a request is refused. Clients that
// are not browsers send neither header.
bool cross_site_write(const httplib::Request& req) {
  if (req.method == "GET" || req.method == "HEAD") {
    return false;
  }
  const auto site = req.get_header_value("Sec-Fetch-Site");
  if (!site.empty() && site != "same-origin" && site != "none") {
    return true;
  }
  const auto origin = req.get_header_value("Origin");
  return req.has_header("Origin") && origin != "http://" + req.get_header_value("Host");
}

void send_asset(httplib::Response& res, const web_asset& a) {
  // Only our own files run: a string from the wire that reached the DOM as markup would still
  // find no inline script or handler allowed.
  res.set_header("Content-Security-Policy",
                 "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                 "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                 "frame-ancestors 'none'");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_header("Referrer-Policy", "no-referrer");
  res.set_header("Cache-Control", "no-store");
  res.set_content(std::string(a.body), std::string(a.content_type).c_str());
}

double round_ms(double seconds) { return std::round(seconds * 1000) / 1000; }

nlohmann::json rfc3339_or_null(const std::optional<wall_clock::time_point>& t) {
  return t ? nlohmann::json(format_rfc3339_us(*t)) : nlohmann::json(nullptr);
}

// ended_json: [{phase, reason, count}] of the non-zero cells of `ended`, in phase order.
template <class Cells>
nlohmann::json ended_json(const Cells& ended) {
  auto arr = nlohmann::json::array();
  for (std::size_t p = 0; p < kStopPhases; ++p) {
    for (std::size_t r = 0; r < kStopReasons; ++r) {
      const std::uint64_t n = ended[p][r];
      if (n != 0) {
        arr.push_back({{"phase", to_string(static_cast<stop_phase>(p))},
                       {"reason", to_string(static_cast<stop_reason>(r))},
                       {"count", n}});
      }
    }
  }
  return arr;
}

// funnel_json: the /api/funnel answer: the window's records from the ring by stop (and whether
// the ring still holds the whole window), the open connections by phase, and the counters since
// start from the metrics.
nlohmann::json funnel_json(const live_hub& hub, const funnel_query& q) {
  const auto now = wall_clock::now();
  const auto in_listener = [&](const std::string& name) {
    return !q.listener || name == *q.listener;
  };
  std::array<std::array<std::uint64_t, kStopReasons>, kStopPhases> since_start{};
  std::uint64_t since_start_total = 0;
  for (const auto* l : hub.current_listeners()) {
    if (!in_listener(l->name)) {
      continue;
    }
    for (std::size_t p = 0; p < kStopPhases; ++p) {
      for (std::size_t r = 0; r < kStopReasons; ++r) {
        const auto n = l->ended[p][r].load(std::memory_order_relaxed);
        since_start[p][r] += n;
        since_start_total += n;
      }
    }
  }
  std::array<std::uint64_t, kLivePhases> open{};
  for (const auto& c : hub.snapshot()) {
    if (in_listener(c.listener)) {
      ++open[static_cast<std::size_t>(c.phase)];
    }
  }
  auto open_json = nlohmann::json::object();
  for (std::size_t i = 0; i < kLivePhases; ++i) {
    open_json[std::string(to_string(static_cast<live_phase>(i)))] = open[i];
  }
  nlohmann::json j{
      {"now", format_rfc3339_us(now)},
      {"window_seconds", static_cast<double>(q.window.count()) / 1000.0},
      {"listener", q.listener ? nlohmann::json(*q.listener) : nlohmann::json(nullptr)},
      {"open", open_json},
      {"since_start", {{"total", since_start_total}, {"ended", ended_json(since_start)}}},
      {"records_dropped", log_sink::dropped_total()},
  };
  if (hub.ring == nullptr) {
    j["window"] = nullptr;
    j["ring"] = nullptr;
    return j;
  }
  const auto f = hub.ring->funnel(q, now);
  const auto cov = hub.ring->coverage();
  j["window"] = {{"total", f.total}, {"complete", f.complete}, {"ended", ended_json(f.ended)}};
  j["ring"] = {{"held", cov.held},
               {"held_bytes", cov.held_bytes},
               {"max_records", hub.ring->max_records()},
               {"max_bytes", hub.ring->max_bytes()},
               {"pushed", cov.pushed},
               {"evicted", cov.evicted},
               {"oldest_ended", rfc3339_or_null(cov.oldest_ended)},
               {"newest_evicted", rfc3339_or_null(cov.newest_evicted)}};
  return j;
}

// records_body: the /api/records answer; the records are the ring's JSON lines as they are.
std::string records_body(const ring_view& v, const records_query& q) {
  std::string out = "{\"limit\": " + std::to_string(q.limit) +
                    ", \"matched\": " + std::to_string(v.matched) +
                    ", \"returned\": " + std::to_string(v.lines.size()) + ", \"records\": [";
  for (std::size_t i = 0; i < v.lines.size(); ++i) {
    out += i == 0 ? "\n" : ",\n";
    out += v.lines[i];
  }
  out += "\n]}\n";
  return out;
}

}  // namespace

nlohmann::json connections_json(std::vector<live_copy> open, const connection_filter& f) {
  std::sort(open.begin(), open.end(),
            [](const live_copy& a, const live_copy& b) { return a.age_seconds > b.age_seconds; });
  auto arr = nlohmann::json::array();
  for (const auto& c : open) {
    if (f.phase && c.phase != *f.phase) {
      continue;
    }
    if (f.older_than_seconds && !(c.age_seconds > *f.older_than_seconds)) {
      continue;
    }
    if (f.sni && !sni_matches(c.sni, *f.sni)) {
      continue;
    }
    // phases: when each phase began, seconds since accept (null: not reached), for the timeline.
    nlohmann::json phases = nlohmann::json::object();
    for (std::size_t i = 0; i < kLivePhases; ++i) {
      const double at = c.phase_at_seconds[i];
      phases[std::string(to_string(static_cast<live_phase>(i)))] =
          at < 0 ? nlohmann::json(nullptr) : nlohmann::json(round_ms(at));
    }
    arr.push_back({
        {"id", c.id},
        {"listener", c.listener},
        {"client", c.client},
        {"sni", c.sni.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.sni)},
        {"route", c.route.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.route)},
        {"upstream", c.upstream.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.upstream)},
        {"phase", to_string(c.phase)},
        {"phases", phases},
        {"pq_key_share", c.pq_key_share},
        {"phase_seconds", std::round(c.phase_seconds * 1000) / 1000},
        {"age_seconds", std::round(c.age_seconds * 1000) / 1000},
        {"accepted", format_rfc3339_us(c.accepted_wall)},
        {"bytes", {{"from_client", c.from_client}, {"from_upstream", c.from_upstream}}},
    });
  }
  return arr;
}

struct admin_server::impl {
  admin_config cfg;
  const live_hub& hub;
  admin_http::bounded_server http;
  std::thread thread;

  impl(const admin_config& c, const live_hub& h) : cfg(c), hub(h) {}

  bool authorized(const httplib::Request& req) const {
    if (cfg.token.empty()) {
      return true;
    }
    return req.get_header_value("Authorization") == "Bearer " + cfg.token;
  }

  // page_routes: the admin page's files and the two endpoints only it needs (read-only, from the
  // record ring and the live registry).
  void page_routes() {
    for (const auto& a : web_assets()) {
      const auto serve = [&a](const httplib::Request&, httplib::Response& res) {
        send_asset(res, a);
      };
      http.Get(std::string(a.path), serve);
      if (a.path == "/index.html") {
        http.Get("/", serve);
      }
    }
    http.Get("/api/records", [this](const httplib::Request& req, httplib::Response& res) {
      const auto parsed = parse_records_query(req.params);
      if (const auto* why = std::get_if<std::string>(&parsed)) {
        send_error(res, 400, *why);
        return;
      }
      if (hub.ring == nullptr) {
        send_error(res, 503, "no record ring (it is kept only by linesman run --admin)");
        return;
      }
      const auto& q = std::get<records_query>(parsed);
      res.set_content(records_body(hub.ring->query(q, wall_clock::now()), q), "application/json");
    });
    http.Get("/api/funnel", [this](const httplib::Request& req, httplib::Response& res) {
      const auto parsed = parse_funnel_query(req.params);
      if (const auto* why = std::get_if<std::string>(&parsed)) {
        send_error(res, 400, *why);
        return;
      }
      send_json(res, 200, funnel_json(hub, std::get<funnel_query>(parsed)));
    });
  }

  void routes() {
    // Runs after the headers and before any body byte is read: the token first (every path but
    // /healthz), then the body, which no endpoint accepts.
    http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      // Answers go out uncompressed: httplib compresses any JSON or text answer for a client
      // that accepts br with brotli at quality 11, which took seconds a refresh for the page's
      // /api/connections of 1,500 open connections (790 KB). The request is httplib's own
      // non-const object, handed to this handler as const.
      const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");
      if (!browser_host_ok(req)) {
        send_error(res, 421, "a browser must name the admin port by IP address or localhost");
        return httplib::Server::HandlerResponse::Handled;
      }
      if (cross_site_write(req)) {
        send_error(res, 403, "a change requested by a page of another site is refused");
        return httplib::Server::HandlerResponse::Handled;
      }
      const bool page =
          (req.method == "GET" || req.method == "HEAD") && page_asset(req.path) != nullptr;
      if (req.path != "/healthz" && !page && !authorized(req)) {
        res.set_header("WWW-Authenticate", "Bearer realm=\"linesman\"");
        send_error(res, 401, "missing or wrong bearer token");
        return httplib::Server::HandlerResponse::Handled;
      }
      const bool fault_post =
          cfg.faults && is_fault_post(req) && !req.has_header("Transfer-Encoding");
      if (has_body(req) && !fault_post) {
        send_error(res, 413, "request body not accepted (the admin endpoint is read-only)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });
    // An exception in a handler is a bug: answer 500 without its text (httplib would put it in
    // a header).
    http.set_exception_handler([](const httplib::Request&, httplib::Response& res,
                                  std::exception_ptr) { send_error(res, 500, "internal error"); });
    http.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
      res.set_content("ok\n", "text/plain");
    });
    http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(format_metrics(hub, hub.count_open()), "text/plain; version=0.0.4");
    });
    http.Get("/api/listeners", [this](const httplib::Request&, httplib::Response& res) {
      const auto open = hub.snapshot();
      auto arr = nlohmann::json::array();
      for (const auto* l : hub.current_listeners()) {
        const auto n = std::count_if(open.begin(), open.end(),
                                     [&](const live_copy& c) { return c.listener == l->name; });
        arr.push_back({{"name", l->name}, {"listen", l->listen}, {"open", n}});
      }
      send_json(res, 200, arr);
    });
    http.Get("/api/connections", [this](const httplib::Request& req, httplib::Response& res) {
      if (const auto why = query_error(req); !why.empty()) {
        send_error(res, 400, why);
        return;
      }
      connection_filter f;
      if (req.has_param("phase")) {
        f.phase = parse_live_phase(req.get_param_value("phase"));
        if (!f.phase) {
          send_error(res, 400, "phase: use inspect, connect, first_reply or stream");
          return;
        }
      }
      if (req.has_param("older_than")) {
        try {
          f.older_than_seconds =
              static_cast<double>(
                  parse_duration(req.get_param_value("older_than"), "older_than").count()) /
              1000.0;
        } catch (const config_error& e) {
          send_error(res, 400, e.what());
          return;
        }
      }
      if (req.has_param("sni")) {
        f.sni = req.get_param_value("sni");
      }
      send_json(res, 200, connections_json(hub.snapshot(), f));
    });
    page_routes();
    if (cfg.faults && hub.faults != nullptr) {
      std::vector<std::string> names;
      for (const auto* l : hub.current_listeners()) {  // (under the hub's lock: reloads)
        names.push_back(l->name);
      }
      add_fault_routes(http, *hub.faults, std::move(names));
    }
    // Known paths answer other methods with 405 (and say which one is allowed).
    const auto not_allowed = [](const httplib::Request&, httplib::Response& res) {
      res.set_header("Allow", "GET, HEAD");
      send_error(res, 405, "method not allowed (read-only: GET)");
    };
    for (const char* p :
         {"/healthz", "/metrics", "/api/listeners", "/api/connections", "/api/records",
          "/api/funnel", "/", "/index.html", "/app.js", "/app.css"}) {
      http.Post(p, not_allowed);
      http.Put(p, not_allowed);
      http.Delete(p, not_allowed);
      http.Patch(p, not_allowed);
      http.Options(p, not_allowed);
    }
    http.set_error_handler([](const httplib::Request&, httplib::Response& res) {
      if (res.status == 404 && res.body.empty()) {
        send_error(res, 404,
                   "not found (try /, /api/connections, /api/records, /api/funnel, "
                   "/api/listeners, /metrics, /healthz)");
      }
    });
  }
};

namespace {

// probe_bind: bind `host:port` once without SO_REUSEPORT, as --listen does, so that a port held
// by anyone (another linesman's proxy or admin port, which do set SO_REUSEPORT) is an error
// naming its holder instead of a silently shared port. Throws listen_error.
void probe_bind(const std::string& listen, const std::string& host, std::uint16_t port) {
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* a4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* a6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (::inet_pton(AF_INET, host.c_str(), &a4->sin_addr) == 1) {
    a4->sin_family = AF_INET;
    a4->sin_port = htons(port);
    len = sizeof *a4;
  } else if (::inet_pton(AF_INET6, host.c_str(), &a6->sin6_addr) == 1) {
    a6->sin6_family = AF_INET6;
    a6->sin6_port = htons(port);
    len = sizeof *a6;
  } else {
    throw listen_error("cannot listen on " + listen + " (--admin): not an IP address");
  }
  const int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int yes = 1;
  int err = 0;
  if (fd < 0 || ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes) != 0 ||
      ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    err = errno;
  }
  if (fd >= 0) {
    ::close(fd);
  }
  if (err != 0) {
    std::string msg = "cannot listen on " + listen + " (--admin): " + std::strerror(err);
    if (const auto owner = find_port_owner(port)) {
      msg += " (held by " + owner->comm + ", pid " + std::to_string(owner->pid) + ")";
    }
    throw listen_error(msg);
  }
}

}  // namespace

admin_server::admin_server(const admin_config& cfg, const live_hub& hub)
    : impl_(std::make_unique<impl>(cfg, hub)) {
  const auto hp = parse_host_port(cfg.listen, "--admin", true);
  if (hp.port != 0) {
    probe_bind(cfg.listen, hp.host, hp.port);
  }
  auto& http = impl_->http;
  // httplib's default options add SO_REUSEPORT, which would let the admin port share a port with
  // another socket that has it too (and split connections between them).
  http.set_socket_options([](socket_t sock) {
    int yes = 1;
    (void)::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  http.new_task_queue = [] { return new httplib::ThreadPool(kAdminThreads); };
  // Second line of defence: pre-routing refuses bodies, this bounds any httplib would still read.
  http.set_payload_max_length(kPayloadBytes);
  impl_->routes();
  int port = hp.port;
  bool ok = false;
  if (hp.port == 0) {
    port = impl_->http.bind_to_any_port(hp.host);
    ok = port > 0;
  } else {
    ok = impl_->http.bind_to_port(hp.host, hp.port);
  }
  if (!ok) {
    throw listen_error("cannot listen on " + cfg.listen + " (--admin): bind failed");
  }
  std::fprintf(stderr, "linesman: admin on %s\n",
               format_endpoint(hp.host, static_cast<unsigned>(port)).c_str());
  std::fflush(stderr);
  impl_->thread = std::thread([this] { impl_->http.listen_after_bind(); });
  // stop() is a no-op before the loop runs; wait for it (bounded) so the destructor can end it.
  for (int i = 0; i < 200 && !impl_->http.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

admin_server::~admin_server() {
  impl_->http.stop();
  if (impl_->thread.joinable()) {
    impl_->thread.join();
  }
}

}  // namespace linesman::proxy
