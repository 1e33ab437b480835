#include "tools/demo/demo.hpp"

#include "tools/demo/firefox_hello.hpp"
#include "tools/demo/peers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace linesman::tools::demo {
namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

// kLinesmanStart/kRecordWait/kStopWait: the deadlines of the demo's own waits (the clients have
// theirs in client_options). Together with the clients they keep the demo well under 20 s.
constexpr ms kLinesmanStart{5000};
constexpr ms kRecordWait{3000};
constexpr ms kStopWait{4000};

// scenario: one listener of the child linesman and the client connection driven through it.
struct scenario {
  std::string id;
  std::string title;
  std::uint16_t upstream_port = 0;
  client_options client;
  expectation expect;
  std::string client_prefix;  // when set, what the client saw must start with it
};

const json* at(const json& j, std::initializer_list<const char*> path) {
  const json* cur = &j;
  for (const char* k : path) {
    if (!cur->is_object()) {
      return nullptr;
    }
    const auto it = cur->find(k);
    if (it == cur->end()) {
      return nullptr;
    }
    cur = &*it;
  }
  return cur;
}

std::string text_at(const json& j, std::initializer_list<const char*> path) {
  const json* v = at(j, path);
  if (v == nullptr) {
    return "-";
  }
  return v->is_string() ? v->get<std::string>() : v->dump();
}

// expect_field: a check that the string at `path` equals (or, with prefix, starts with) `want`.
std::function<std::string(const json&)> expect_field(std::initializer_list<const char*> path,
                                                     std::string want, bool prefix = false,
                                                     bool contains = false) {
  std::vector<const char*> p(path);
  return [p, want, prefix, contains](const json& rec) -> std::string {
    const json* cur = &rec;
    std::string name;
    for (const char* k : p) {
      name += name.empty() ? k : std::string(".") + k;
      cur = cur != nullptr && cur->is_object() && cur->contains(k) ? &(*cur)[k] : nullptr;
    }
    const std::string got = cur != nullptr && cur->is_string() ? cur->get<std::string>() : "";
    const bool ok = contains ? got.find(want) != std::string::npos
                    : prefix ? got.rfind(want, 0) == 0
                             : got == want;
    if (ok && cur != nullptr) {
      return "";
    }
    return name + " is " + (cur == nullptr ? std::string("missing") : cur->dump()) +
           (contains ? ", should contain '"
            : prefix ? ", should start with '"
                     : ", should be '") +
           want + "'";
  };
}

std::function<std::string(const json&)> all_of(
    std::vector<std::function<std::string(const json&)>> checks) {
  return [checks](const json& rec) -> std::string {
    for (const auto& c : checks) {
      if (auto m = c(rec); !m.empty()) {
        return m;
      }
    }
    return "";
  };
}

// sni_is_null: the record has a tls object (the client sent a ClientHello) whose sni is null.
std::string sni_is_null(const json& rec) {
  const json* tls = at(rec, {"tls"});
  if (tls == nullptr || !tls->is_object()) {
    return "tls is missing (the ClientHello was not seen)";
  }
  const json* sni = at(*tls, {"sni"});
  if (sni != nullptr && sni->is_null()) {
    return "";
  }
  return "tls.sni is " + (sni == nullptr ? std::string("missing") : sni->dump()) +
         ", should be null";
}

// pq_and_split: the record shows a post-quantum key share and the SNI in read 2, warned as such.
std::string pq_and_split(const json& rec) {
  const json* pq = at(rec, {"tls", "pq_key_share"});
  if (pq == nullptr || !pq->is_boolean() || !pq->get<bool>()) {
    return "tls.pq_key_share is " + (pq == nullptr ? std::string("missing") : pq->dump()) +
           ", should be true";
  }
  const json* read = at(rec, {"tls", "sni_read"});
  if (read == nullptr || !read->is_number_integer() || read->get<int>() != 2) {
    return "tls.sni_read is " + (read == nullptr ? std::string("missing") : read->dump()) +
           ", should be 2";
  }
  const json* w = at(rec, {"warnings"});
  const bool warned = w != nullptr && w->is_array() &&
                      std::find(w->begin(), w->end(), json("sni_after_first_segment")) != w->end();
  return warned ? "" : "warnings lack sni_after_first_segment";
}

std::vector<scenario> make_scenarios(const upstreams& up) {
  const std::string app = kAppHost;
  const std::string unknown = "shop.example.test";
  const std::string get = "GET / HTTP/1.1\r\nHost: " + app + "\r\nConnection: close\r\n\r\n";
  std::vector<scenario> s;
  s.push_back({"1-no-entrypoint",
               "no TCP entrypoint: nothing listens on the port (missing or failed to bind)",
               up.closed(),
               {.port = 0, .sni = app, .request = get},
               {"connect", {"upstream_refused"}, nullptr},
               ""});
  s.push_back({"2-router-rule",
               "router rule matches no SNI (Host() on a TCP router, HostSNI without tls)",
               up.router_port(),
               {.port = 0, .sni = unknown, .request = get},
               {"first_reply", {"upstream_closed_silently"}, expect_field({"tls", "sni"}, unknown)},
               ""});
  s.push_back({"2b-default-cert",
               "no TCP router matched: Traefik's default TLS certificate answered (TLS 1.2)",
               up.default_cert_router_port(),
               {.port = 0, .sni = unknown, .trust = up.app_cert(), .request = get},
               {"stream",
                {"completed", "client_closed"},
                all_of({expect_field({"tls", "sni"}, unknown),
                        expect_field({"server_tls", "certificate", "subject"}, kDefaultCertName,
                                     false, true)})},
               ""});
  // A browser's post-quantum hello (about 2 KB) crosses a real network in two segments; this
  // router reads only the first, which ends before the SNI, and answers with its default
  // certificate. The record names the cause: the SNI arrived in read 2.
  s.push_back({"2c-pq-one-segment",
               "post-quantum hello (Firefox, 1.9 KB) in two segments; the router reads only the "
               "first and answers with its default certificate",
               up.one_segment_router_port(),
               {.port = 0,
                .deadline = ms(1500),
                .raw_hello = firefox_hello(),
                .split_at = 100,
                .split_gap = ms(100)},
               {"stream",
                {"completed", "client_closed", "upstream_closed"},
                all_of({expect_field({"tls", "sni"}, kFirefoxSni), pq_and_split,
                        expect_field({"hint"}, "inspects only the first segment", false, true)})},
               ""});
  s.push_back({"4-not-tls-backend",
               "TLS passthrough to a backend that speaks plain HTTP",
               up.plain_port(),
               {.port = 0, .sni = app, .request = get},
               {"first_reply",
                {"upstream_not_tls"},
                all_of({expect_field({"upstream_first", "protocol"}, "http1"),
                        expect_field({"upstream_first", "summary"}, "HTTP/1.1 400", true)})},
               ""});
  s.push_back({"4b-no-sni",
               "client sends no SNI (IP literal) to an entrypoint routed by HostSNI",
               up.router_port(),
               {.port = 0, .sni = std::nullopt, .request = get},
               {"first_reply", {"upstream_closed_silently"}, sni_is_null},
               ""});
  s.push_back({"4c-plain-to-tls",
               "plaintext sent to a backend that wants TLS (router terminates TLS, no passthrough)",
               up.tls_port(),
               {.port = 0, .tls = false, .sni = std::nullopt, .request = get},
               {"first_reply",
                {"upstream_closed_silently", "upstream_tls_alert"},
                expect_field({"client_first", "protocol"}, "http1")},
               ""});
  s.push_back({"ok-healthy",
               "healthy: HostSNI router with passthrough to the TLS backend",
               up.router_port(),
               {.port = 0, .sni = app, .trust = up.app_cert(), .request = get},
               {"stream",
                {"completed", "client_closed", "upstream_closed"},
                all_of({expect_field({"tls", "sni"}, app), expect_field({"outcome"}, "ok")})},
               "HTTP/1.1 200"});
  return s;
}

std::string yaml_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    out += c == '\'' ? std::string("''") : std::string(1, c);
  }
  return out + "'";
}

std::string make_config(const std::vector<scenario>& ss, const fs::path& dir) {
  std::ostringstream y;
  y << "# linesman demo: one listener per scenario (written by `linesman demo`)\n"
    << "defaults:\n  timeouts: {peek: 2s, connect: 2s, idle: 5s, drain: 1s}\n"
    << "listeners:\n";
  for (const auto& s : ss) {
    y << "  - name: " << yaml_quote(s.id) << "\n"
      << "    listen: 127.0.0.1:0\n"
      << "    upstream: 127.0.0.1:" << s.upstream_port << "\n"
      << "    access_log: " << yaml_quote((dir / (s.id + ".jsonl")).string()) << "\n";
  }
  return y.str();
}

// child: the `linesman run` process. Its stderr is read on a thread (so it never blocks on a full
// pipe) and kept for diagnostics; the "listening on" lines give each listener's port.
class child {
 public:
  child(const std::string& exe, const fs::path& config, const std::vector<std::string>& extra) {
    std::array<int, 2> p{};
    if (::pipe2(p.data(), O_CLOEXEC) != 0) {
      throw std::runtime_error(std::string("pipe2: ") + std::strerror(errno));
    }
    const int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
      ::close(p[0]);
      ::close(p[1]);
      throw std::runtime_error(std::string("/dev/null: ") + std::strerror(errno));
    }
    const std::string cfg = config.string();
    std::vector<std::string> args{exe,         "run", "--config",    cfg,
                                  "--threads", "2",   "--log-level", "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) {
      argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    // fork + exec rather than posix_spawn for PR_SET_PDEATHSIG: if the demo dies (killed, a
    // crash), the kernel sends SIGTERM to linesman, so nothing outlives it. The child calls only
    // async-signal-safe functions before exec (other threads of the demo are running).
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);
      if (::getppid() != parent) {
        ::_exit(127);  // the demo is already gone
      }
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(p[1], 2);
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      ::sigaction(SIGPIPE, &dfl, nullptr);  // the demo ignores it; linesman gets the usual
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::execv(exe.c_str(), argv.data());
      static constexpr char kMsg[] = "linesman demo: exec of the linesman binary failed\n";
      (void)!::write(2, kMsg, sizeof kMsg - 1);
      ::_exit(127);
    }
    const int fork_errno = errno;
    ::close(devnull);
    ::close(p[1]);
    if (pid_ < 0) {
      ::close(p[0]);
      throw std::runtime_error("cannot start " + exe + ": " + std::strerror(fork_errno));
    }
    reader_ = std::thread([this, fd = p[0]] { read_stderr(fd); });
  }

  ~child() {
    stop();
    if (reader_.joinable()) {
      reader_.join();
    }
  }

  child(const child&) = delete;
  child& operator=(const child&) = delete;

  // wait_listening: the port of every listener in `names`, or an error text when linesman exited
  // or did not print them all before the deadline.
  std::string wait_listening(const std::vector<std::string>& names,
                             std::map<std::string, std::uint16_t>& ports) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kLinesmanStart, [&] {
      if (eof_) {
        return true;
      }
      for (const auto& n : names) {
        if (!ports_.contains(n)) {
          return false;
        }
      }
      return true;
    });
    ports = ports_;
    for (const auto& n : names) {
      if (!ports_.contains(n)) {
        return std::string(eof_ ? "linesman exited" : "linesman did not start in time") +
               " before listening on '" + n + "'";
      }
    }
    return "";
  }

  // stop: SIGTERM, wait up to kStopWait, then SIGKILL. Returns the exit status text ("" = 0).
  std::string stop() {
    if (pid_ <= 0) {
      return status_;
    }
    ::kill(pid_, SIGTERM);
    const auto deadline = clock::now() + kStopWait;
    int st = 0;
    pid_t r = 0;
    while ((r = ::waitpid(pid_, &st, WNOHANG)) == 0 && clock::now() < deadline) {
      std::this_thread::sleep_for(ms(10));
    }
    if (r == 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, &st, 0);
      status_ = "did not stop within " + std::to_string(kStopWait.count()) + " ms of SIGTERM";
    } else if (r > 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0) {
      status_ = "exited " + std::to_string(WEXITSTATUS(st));
    } else if (r > 0 && WIFSIGNALED(st)) {
      status_ = std::string("killed by signal ") + ::strsignal(WTERMSIG(st));
    }
    pid_ = -1;
    return status_;
  }

  // wait_admin: the admin address linesman printed ("127.0.0.1:PORT"), "" if it did not in time.
  std::string wait_admin() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, kLinesmanStart, [&] { return eof_ || !admin_.empty(); });
    return admin_;
  }

  std::string stderr_text() {
    std::lock_guard lock(mu_);
    return err_;
  }

 private:
  void read_stderr(int fd) {
    std::array<char, 4096> buf{};
    std::string line;
    for (;;) {
      const ssize_t n = ::read(fd, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n <= 0) {
        break;
      }
      std::lock_guard lock(mu_);
      err_.append(buf.data(), static_cast<std::size_t>(n));
      if (err_.size() > (1u << 20)) {
        err_.erase(0, err_.size() - (1u << 19));
      }
      parse_lines();
      cv_.notify_all();
    }
    ::close(fd);
    std::lock_guard lock(mu_);
    eof_ = true;
    cv_.notify_all();
  }

  // parse_lines: "linesman: listening on 127.0.0.1:PORT (listener NAME)" (the shape tests rely on).
  void parse_lines() {
    static constexpr std::string_view kAdmin = "linesman: admin on ";
    if (const auto at = err_.find(kAdmin); admin_.empty() && at != std::string::npos) {
      if (const auto eol = err_.find('\n', at); eol != std::string::npos) {
        admin_ = err_.substr(at + kAdmin.size(), eol - at - kAdmin.size());
      }
    }
    static constexpr std::string_view kPrefix = "linesman: listening on ";
    std::size_t pos = 0;
    while ((pos = err_.find(kPrefix, pos)) != std::string::npos) {
      const auto eol = err_.find('\n', pos);
      if (eol == std::string::npos) {
        return;
      }
      const std::string line = err_.substr(pos + kPrefix.size(), eol - pos - kPrefix.size());
      pos = eol;
      const auto colon = line.find(':');
      const auto open = line.find(" (listener ");
      if (colon == std::string::npos || open == std::string::npos || line.back() != ')') {
        continue;
      }
      unsigned port = 0;
      const auto [p, ec] = std::from_chars(line.data() + colon + 1, line.data() + open, port);
      if (ec != std::errc() || port == 0 || port > 65535) {
        continue;
      }
      const auto name_at = open + std::string_view(" (listener ").size();
      ports_[line.substr(name_at, line.size() - 1 - name_at)] = static_cast<std::uint16_t>(port);
    }
  }

  pid_t pid_ = -1;
  std::string status_;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::string err_;
  bool eof_ = false;
  std::map<std::string, std::uint16_t> ports_;
  std::string admin_;
};

// temp_dir: a private directory for the config and the access logs, removed on destruction.
class temp_dir {
 public:
  temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "linesman-demo-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) {
      throw std::runtime_error("cannot create a directory in " +
                               fs::temp_directory_path().string() + ": " + std::strerror(errno));
    }
    path_ = tmpl;
  }
  ~temp_dir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// read_records: the records in a listener's log file (lines that do not parse are skipped).
std::vector<json> read_records(const fs::path& file) {
  std::vector<json> out;
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto j = json::parse(line, nullptr, false);
    if (!j.is_discarded() && j.is_object()) {
      out.push_back(std::move(j));
    }
  }
  return out;
}

// find_record: the record of the connection from client port `port`.
std::optional<json> find_record(const std::vector<json>& recs, std::uint16_t port) {
  for (const auto& r : recs) {
    const json* p = at(r, {"client", "port"});
    if (p != nullptr && p->is_number_integer() && p->get<int>() == port) {
      return r;
    }
  }
  return std::nullopt;
}

std::string fit(std::string s, std::size_t width) {
  if (s.size() <= width) {
    return s;
  }
  if (width <= 3) {
    return s.substr(0, width);
  }
  return s.substr(0, width - 3) + "...";
}

std::string pad(const std::string& s, std::size_t width) {
  return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

}  // namespace

std::string stopped_at(const json& rec) {
  return text_at(rec, {"stop", "phase"}) + " / " + text_at(rec, {"stop", "reason"}) + " / " +
         text_at(rec, {"stop", "by"});
}

void evaluate(outcome& o) {
  if (!o.rec) {
    o.mismatch = "no record";
    return;
  }
  const std::string phase = text_at(*o.rec, {"stop", "phase"});
  const std::string reason = text_at(*o.rec, {"stop", "reason"});
  bool reason_ok = false;
  std::string want;
  for (const auto& r : o.expect.reasons) {
    reason_ok = reason_ok || r == reason;
    want += (want.empty() ? "" : "|") + r;
  }
  if (phase != o.expect.phase || !reason_ok) {
    o.mismatch = "expected " + o.expect.phase + " / " + want + ", got " + phase + " / " + reason;
    return;
  }
  o.mismatch = o.expect.check ? o.expect.check(*o.rec) : "";
}

std::string render_table(const std::vector<outcome>& results, std::size_t width) {
  constexpr std::size_t kId = 19;
  constexpr std::size_t kStop = 58;
  std::ostringstream t;
  t << fit(pad("SCENARIO", kId) + pad("STOPPED AT (phase / reason / by)", kStop) + "AS EXPECTED",
           width)
    << "\n";
  for (const auto& o : results) {
    const std::string stop = o.rec ? stopped_at(*o.rec) : "(no record)";
    t << fit(pad(o.id, kId) + pad(stop, kStop) + (o.mismatch.empty() ? "yes" : "NO"), width)
      << "\n";
    t << fit("    stands for: " + o.title, width) << "\n";
    t << fit("    client saw: " + o.client_saw, width) << "\n";
    if (o.rec) {
      t << fit("    hint: " + text_at(*o.rec, {"hint"}), width) << "\n";
    }
    if (!o.mismatch.empty()) {
      t << fit("    differs: " + o.mismatch, width) << "\n";
    }
  }
  return t.str();
}

namespace {

// print_report: the records (one JSON line each) and, unless `json_only`, the table.
void print_report(const std::vector<outcome>& results, bool json_only, std::ostream& out,
                  clock::duration took) {
  for (const auto& o : results) {
    if (o.rec) {
      out << o.rec->dump(-1, ' ', false, json::error_handler_t::replace) << "\n";
    }
  }
  int failed = 0;
  for (const auto& o : results) {
    failed += o.mismatch.empty() ? 0 : 1;
  }
  if (!json_only) {
    out << "\n"
        << render_table(results) << "\n"
        << (failed == 0 ? "every scenario produced the record it should"
                        : std::to_string(failed) + " of " + std::to_string(results.size()) +
                              " scenarios did not")
        << " (" << std::chrono::duration_cast<ms>(took).count()
        << " ms; full hints in the JSON above)\n";
  }
  out.flush();
}

std::atomic<bool> hold_ended{false};

extern "C" void end_hold(int) { hold_ended.store(true); }

// hold_until_signal: returns after `limit`, or sooner on SIGINT or SIGTERM (their handlers are
// put back on return).
void hold_until_signal(std::chrono::seconds limit) {
  hold_ended.store(false);
  struct sigaction sa {};
  sa.sa_handler = end_hold;
  struct sigaction old_int {};
  struct sigaction old_term {};
  ::sigaction(SIGINT, &sa, &old_int);
  ::sigaction(SIGTERM, &sa, &old_term);
  const auto deadline = clock::now() + limit;
  while (!hold_ended.load() && clock::now() < deadline) {
    std::this_thread::sleep_for(ms(50));
  }
  ::sigaction(SIGINT, &old_int, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
}

}  // namespace

int run_demo(const demo_options& opt, std::ostream& out, std::ostream& err) {
  const auto started = clock::now();
  // The demo writes to sockets its peers may have closed: an error return, never a signal.
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<outcome> results;
  bool reported = false;
  std::string child_err;
  std::string child_status;
  try {
    temp_dir dir;
    upstreams up;
    std::vector<scenario> ss = make_scenarios(up);
    const fs::path config = dir.path() / "linesman.yaml";
    {
      std::ofstream f(config);
      f << make_config(ss, dir.path());
      if (!f) {
        throw std::runtime_error("cannot write " + config.string());
      }
    }
    std::string exe = opt.linesman;
    if (exe.empty()) {
      exe = fs::read_symlink("/proc/self/exe").string();
    }
    std::vector<std::string> extra;
    if (!opt.admin.empty()) {
      extra = {"--admin", opt.admin};
    }
    child lm(exe, config, extra);
    std::vector<std::string> names;
    for (const auto& s : ss) {
      names.push_back(s.id);
    }
    std::map<std::string, std::uint16_t> ports;
    if (const auto e = lm.wait_listening(names, ports); !e.empty()) {
      lm.stop();
      err << "linesman demo: " << e << "\n" << lm.stderr_text();
      return 1;
    }

    // One client per scenario, all at once: each is bounded by its own deadline.
    std::vector<client_result> seen(ss.size());
    {
      std::vector<std::thread> clients;
      for (std::size_t i = 0; i < ss.size(); ++i) {
        ss[i].client.port = ports[ss[i].id];
        clients.emplace_back([&, i] { seen[i] = run_client(ss[i].client); });
      }
      for (auto& c : clients) {
        c.join();
      }
    }

    // linesman writes a record when a connection ends; wait for each before stopping it, so no
    // connection is cut by the shutdown (which would be a proxy_shutdown record instead).
    const auto deadline = clock::now() + kRecordWait;
    std::vector<std::optional<json>> recs(ss.size());
    for (;;) {
      bool all = true;
      for (std::size_t i = 0; i < ss.size(); ++i) {
        if (!recs[i] && seen[i].local_port != 0) {
          recs[i] =
              find_record(read_records(dir.path() / (ss[i].id + ".jsonl")), seen[i].local_port);
        }
        all = all && (recs[i] || seen[i].local_port == 0);
      }
      if (all || clock::now() >= deadline) {
        break;
      }
      std::this_thread::sleep_for(ms(20));
    }
    const auto make_outcomes = [&] {
      for (std::size_t i = 0; i < ss.size(); ++i) {
        if (!recs[i] && seen[i].local_port != 0) {  // written during the shutdown, if at all
          recs[i] =
              find_record(read_records(dir.path() / (ss[i].id + ".jsonl")), seen[i].local_port);
        }
        outcome o{ss[i].id, ss[i].title, ss[i].expect, seen[i].saw, recs[i], ""};
        evaluate(o);
        if (o.mismatch.empty() && !ss[i].client_prefix.empty() &&
            o.client_saw.rfind(ss[i].client_prefix, 0) != 0) {
          o.mismatch = "the client should have got '" + ss[i].client_prefix + "...'";
        }
        results.push_back(std::move(o));
      }
    };
    if (!opt.admin.empty()) {
      // The page shows this run's connections: report now, then keep linesman up.
      make_outcomes();
      print_report(results, opt.json, out, clock::now() - started);
      reported = true;
      const auto admin = lm.wait_admin();
      out << "linesman demo: linesman's admin page is on http://"
          << (admin.empty() ? opt.admin : admin) << "/ ; access logs in " << dir.path().string()
          << "; holding for " << opt.hold_seconds << " s (Ctrl-C ends it)" << std::endl;
      hold_until_signal(std::chrono::seconds(opt.hold_seconds));
    }
    child_status = lm.stop();
    up.stop();
    child_err = lm.stderr_text();
    if (opt.admin.empty()) {
      make_outcomes();
    }
  } catch (const std::exception& e) {
    err << "linesman demo: " << e.what() << "\n";
    return 1;
  }

  if (!reported) {
    print_report(results, opt.json, out, clock::now() - started);
  }
  int failed = 0;
  for (const auto& o : results) {
    failed += o.mismatch.empty() ? 0 : 1;
  }
  for (const auto& o : results) {
    if (!o.mismatch.empty()) {
      err << "linesman demo: scenario " << o.id << " differs: " << o.mismatch
          << (o.rec ? "; record: " + o.rec->dump() : std::string()) << "\n";
    }
  }
  if (!child_status.empty()) {
    err << "linesman demo: linesman run " << child_status << "\n";
  }
  if ((failed != 0 || opt.verbose) && !child_err.empty()) {
    err << "linesman demo: linesman's stderr:\n" << child_err;
  }
  return failed == 0 && child_status.empty() ? 0 : 1;
}

}  // namespace linesman::tools::demo
