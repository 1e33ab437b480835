// `linesman top`: a terminal view of the open connections of a running `linesman run --admin`,
// read from its /api/connections once a second (ANSI clear and redraw; q or Ctrl-C quits).
// Columns are cut to the terminal width so an 80x24 terminal stays readable.
#include "proxy/config.hpp"
#include "tools/cli/commands.hpp"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>
#include <termios.h>

namespace linesman::tools {
namespace {

volatile std::sig_atomic_t g_quit = 0;
void on_sigint(int) { g_quit = 1; }

struct top_options {
  std::string admin;
  std::string token;
  std::string sort = "age";
  bool once = false;
};

std::string human_seconds(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    const int m = static_cast<int>(s / 60);
    std::snprintf(buf, sizeof buf, "%dm%02ds", m, static_cast<int>(s) % 60);
  } else {
    const int h = static_cast<int>(s / 3600);
    std::snprintf(buf, sizeof buf, "%dh%02dm", h, (static_cast<int>(s) / 60) % 60);
  }
  return buf;
}

std::string human_bytes(std::uint64_t b) {
  char buf[32];
  if (b < 10000) {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(b));
  } else if (b < 10'000'000) {
    std::snprintf(buf, sizeof buf, "%.1fK", static_cast<double>(b) / 1024.0);
  } else if (b < 10'000'000'000ULL) {
    std::snprintf(buf, sizeof buf, "%.1fM", static_cast<double>(b) / (1024.0 * 1024.0));
  } else {
    std::snprintf(buf, sizeof buf, "%.1fG", static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0));
  }
  return buf;
}

// fit: `s` cut or padded to exactly `w` columns (a cut ends in '~'); right-aligned when `right`.
std::string fit(std::string s, std::size_t w, bool right = false) {
  if (w == 0) {
    return "";
  }
  if (s.size() > w) {
    s = s.substr(0, w - 1) + "~";
  }
  const std::string pad(w - s.size(), ' ');
  return right ? pad + s : s + pad;
}

int phase_rank(const std::string& p) {
  if (p == "inspect") {
    return 0;
  }
  if (p == "connect") {
    return 1;
  }
  if (p == "first_reply") {
    return 2;
  }
  return 3;
}

// render: one frame for `width` x `height` (no trailing clear).
std::string render(const top_options& o, const nlohmann::json& conns, const std::string& error,
                   std::size_t width, std::size_t height) {
  std::vector<nlohmann::json> rows(conns.begin(), conns.end());
  const auto age = [](const nlohmann::json& c) { return c.value("age_seconds", 0.0); };
  const auto bytes = [](const nlohmann::json& c) {
    return c["bytes"].value("from_client", std::uint64_t{0}) +
           c["bytes"].value("from_upstream", std::uint64_t{0});
  };
  if (o.sort == "bytes") {
    std::stable_sort(rows.begin(), rows.end(),
                     [&](const auto& a, const auto& b) { return bytes(a) > bytes(b); });
  } else if (o.sort == "phase") {
    std::stable_sort(rows.begin(), rows.end(), [&](const auto& a, const auto& b) {
      const int ra = phase_rank(a.value("phase", "")), rb = phase_rank(b.value("phase", ""));
      return ra != rb ? ra < rb : age(a) > age(b);
    });
  } else {
    std::stable_sort(rows.begin(), rows.end(),
                     [&](const auto& a, const auto& b) { return age(a) > age(b); });
  }
  int by_phase[4] = {0, 0, 0, 0};
  for (const auto& c : rows) {
    ++by_phase[phase_rank(c.value("phase", ""))];
  }
  char clock[16];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(clock, sizeof clock, "%H:%M:%SZ", &tm);
  std::string out;
  const auto line = [&](const std::string& s) { out += fit(s, width) + "\n"; };
  line("linesman top  " + o.admin + "  " + clock + "  sort:" + o.sort + "  q quits");
  if (!error.empty()) {
    line("admin unreachable: " + error);
  } else {
    line(std::to_string(rows.size()) + " open: inspect " + std::to_string(by_phase[0]) +
         ", connect " + std::to_string(by_phase[1]) + ", first_reply " +
         std::to_string(by_phase[2]) + ", stream " + std::to_string(by_phase[3]));
  }
  // AGE PHASE IN-PHASE CLIENT TARGET C>U U>C; TARGET (SNI, else upstream) takes what is left.
  constexpr std::size_t kAge = 6, kPhase = 11, kInPh = 6, kClient = 21, kBytes = 6;
  const std::size_t fixed = kAge + kPhase + kInPh + kClient + 2 * kBytes + 6;
  const std::size_t target = width > fixed + 8 ? width - fixed : 8;
  const auto row = [&](const std::string& a, const std::string& p, const std::string& i,
                       const std::string& c, const std::string& t, const std::string& b1,
                       const std::string& b2) {
    line(fit(a, kAge, true) + " " + fit(p, kPhase) + " " + fit(i, kInPh, true) + " " +
         fit(c, kClient) + " " + fit(t, target) + " " + fit(b1, kBytes, true) + " " +
         fit(b2, kBytes, true));
  };
  row("AGE", "PHASE", "IN-PH", "CLIENT", "SNI / UPSTREAM", "C>U", "U>C");
  const std::size_t room = height > 4 ? height - 4 : 1;
  std::size_t shown = 0;
  for (const auto& c : rows) {
    if (shown == room && rows.size() > room) {
      break;
    }
    if (shown + 1 == room && rows.size() > room) {
      line("... " + std::to_string(rows.size() - shown) + " more");
      shown = room;
      break;
    }
    std::string t = c["sni"].is_string() ? c["sni"].get<std::string>() : "";
    if (c.value("pq_key_share", false)) {
      t = "[PQ] " + t;  // a post-quantum key share: a ~2 KB hello that spans segments
    }
    if (c["upstream"].is_string()) {
      t += (t.empty() ? "" : " > ") + c["upstream"].get<std::string>();
    }
    row(human_seconds(age(c)), c.value("phase", "?"), human_seconds(c.value("phase_seconds", 0.0)),
        c.value("client", ""), t.empty() ? "-" : t,
        human_bytes(c["bytes"].value("from_client", std::uint64_t{0})),
        human_bytes(c["bytes"].value("from_upstream", std::uint64_t{0})));
    ++shown;
  }
  return out;
}

// fetch: GET /api/connections; empty error on success.
nlohmann::json fetch(httplib::Client& cli, const top_options& o, std::string& error) {
  httplib::Headers h;
  if (!o.token.empty()) {
    h.emplace("Authorization", "Bearer " + o.token);
  }
  auto res = cli.Get("/api/connections", h);
  if (!res) {
    error = httplib::to_string(res.error());
    return nlohmann::json::array();
  }
  if (res->status != 200) {
    error = "HTTP " + std::to_string(res->status) + " from /api/connections";
    return nlohmann::json::array();
  }
  try {
    auto j = nlohmann::json::parse(res->body);
    error.clear();
    return j.is_array() ? j : nlohmann::json::array();
  } catch (const nlohmann::json::exception& e) {
    error = std::string("bad JSON: ") + e.what();
    return nlohmann::json::array();
  }
}

void term_size(std::size_t& w, std::size_t& h) {
  w = 80;
  h = 24;
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0 && ws.ws_row > 0) {
    w = ws.ws_col;
    h = ws.ws_row;
  }
}

int run_top(top_options& o) {
  const auto hp = proxy::parse_host_port(o.admin, "--admin", false);
  httplib::Client cli(hp.host, hp.port);
  cli.set_connection_timeout(1, 0);
  cli.set_read_timeout(2, 0);
  std::size_t w = 80, h = 24;
  if (o.once) {
    std::string error;
    const auto conns = fetch(cli, o, error);
    term_size(w, h);
    std::cout << render(o, conns, error, w, h) << std::flush;
    return error.empty() ? 0 : 1;
  }
  const bool tty = ::isatty(STDIN_FILENO) != 0;
  termios saved{};
  if (tty && ::tcgetattr(STDIN_FILENO, &saved) == 0) {
    termios raw = saved;
    raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO));  // ISIG stays: Ctrl-C is SIGINT
    raw.c_cc[VMIN] = 0;
    raw.c_cc[VTIME] = 0;
    ::tcsetattr(STDIN_FILENO, TCSANOW, &raw);
  }
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  std::cout << "\x1b[?25l";  // hide the cursor while redrawing
  while (g_quit == 0) {
    std::string error;
    const auto conns = fetch(cli, o, error);
    term_size(w, h);
    std::cout << "\x1b[H\x1b[2J" << render(o, conns, error, w, h) << std::flush;
    pollfd p{STDIN_FILENO, POLLIN, 0};
    // One second between frames, or a key.
    if (::poll(&p, 1, 1000) > 0 && (p.revents & POLLIN) != 0) {
      char ch = 0;
      const ssize_t n = ::read(STDIN_FILENO, &ch, 1);
      if (n == 0 || ch == 'q' || ch == 'Q') {
        break;
      }
      if (ch == 'a') {
        o.sort = "age";
      } else if (ch == 'b') {
        o.sort = "bytes";
      } else if (ch == 'p') {
        o.sort = "phase";
      }
    }
  }
  std::cout << "\x1b[?25h\n" << std::flush;
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSANOW, &saved);
  }
  return 0;
}

}  // namespace

void add_top_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("top", "Live view of a running proxy's open connections");
  static top_options o;
  cmd->add_option("--admin", o.admin, "ADDR:PORT of `linesman run --admin`")->required();
  cmd->add_option("--token", o.token, "Bearer token (--admin-token of the proxy)");
  cmd->add_option("--sort", o.sort, "age|bytes|phase (keys a, b, p switch while running)")
      ->check(CLI::IsMember({"age", "bytes", "phase"}));
  cmd->add_flag("--once", o.once, "print one frame and exit (1 if the admin is unreachable)");
  cmd->callback([] { exit_code() = run_top(o); });
}

}  // namespace linesman::tools
