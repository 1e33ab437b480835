// `linesman run`: the inline proxy. Parses the flags (and --config), builds the server, serves
// until SIGTERM/SIGINT. Bad input throws (main prints it and exits 2); a listen address that
// cannot be bound exits 1 with the holder of the port when /proc shows it.
#include "proxy/config.hpp"
#include "proxy/server.hpp"
#include "tools/cli/commands.hpp"

#include <charconv>
#include <iostream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace linesman::tools {
namespace {

struct run_options {
  proxy::cli_listener listener;
  std::optional<std::string> config;
  std::optional<std::string> threads_text;
  std::optional<std::string> max_connections_text;
  std::optional<unsigned> threads;
  std::optional<std::size_t> max_connections;
  bool no_splice = false;
  std::string log_level = "info";
  std::optional<std::string> admin, admin_token, log_open_every;
  bool admin_allow_remote = false;
  bool admin_faults = false;
  std::optional<std::string> fault_seed_text;
  std::optional<std::string> admin_records_text;
  bool watch = false;
};

// opt: a CLI11 option into a std::optional<std::string> ("given or not").
void opt(CLI::App* cmd, const std::string& name, std::optional<std::string>& out,
         const std::string& help) {
  cmd->add_option_function<std::string>(
      name, [&out](const std::string& v) { out = v; }, help);
}

// positive: a decimal count in [1, max]; config_error naming `flag` otherwise.
std::size_t positive(const std::string& text, const std::string& flag, std::size_t max) {
  std::size_t v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || v == 0 || v > max) {
    throw proxy::config_error(flag + ": '" + text + "' is not a number from 1 to " +
                              std::to_string(max));
  }
  return v;
}

}  // namespace

void add_run_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("run", "Run the inline proxy: one JSON record per connection");
  static run_options o;
  auto& l = o.listener;
  opt(cmd, "--listen", l.listen, "ADDR:PORT to accept on (127.0.0.1:0, [::1]:8443)");
  opt(cmd, "--upstream", l.upstream, "HOST:PORT of the default upstream (resolved per connect)");
  cmd->add_option("--route", l.routes, "SNI=HOST:PORT (repeatable; exact or *.example.com)");
  opt(cmd, "--access-log", l.access_log, "file for the JSON-lines access log, - for stdout");
  opt(cmd, "--log-format", l.log_format,
      "linesman|ecs|otel: access-log fields as linesman's schema, Elastic Common Schema or OTLP "
      "JSON (default linesman; with --config, for listeners without log_format)");
  opt(cmd, "--listener-name", l.name, "listener name in records (default: the listen address)");
  opt(cmd, "--peek-timeout", l.peek, "wait for the ClientHello with SNI routes (default 10s)");
  opt(cmd, "--connect-timeout", l.connect, "upstream TCP connect timeout (default 10s)");
  opt(cmd, "--idle-timeout", l.idle, "close after no byte moved for this long (default 300s)");
  opt(cmd, "--drain-timeout", l.drain, "on SIGTERM, time left to open connections (default 10s)");
  opt(cmd, "--proxy-protocol-in", l.proxy_in,
      "off|auto|v1|v2: expect a PROXY protocol header from trusted clients (default off)");
  cmd->add_option("--proxy-trusted", l.proxy_trusted,
                  "CIDR whose PROXY headers are believed (repeatable; default 127.0.0.0/8, ::1)");
  cmd->add_flag("--proxy-protocol-strip", l.proxy_strip,
                "drop the received PROXY header instead of forwarding it upstream");
  opt(cmd, "--proxy-protocol-out", l.proxy_out,
      "v1|v2: send a PROXY header with the real client address upstream");
  cmd->add_flag("--transparent", l.transparent,
                "upstream = the original destination after an nftables REDIRECT (SO_ORIGINAL_DST)");
  opt(cmd, "--config", o.config,
      "YAML file with listeners, routes and timeouts (SIGHUP reloads it; flags stay)");
  cmd->add_flag("--watch", o.watch, "with --config: reload the file when it changes (inotify)");
  opt(cmd, "--capture", l.capture,
      "DIR: one pcapng file per connection (<id>.pcapng, mode 0600); off by default");
  opt(cmd, "--capture-bytes", l.capture_bytes,
      "payload kept per direction with --capture: N (64k default, k/M suffixes) or all");
  // Numbers and the log level are read as text and checked here, so that bad input exits 2 with
  // the flag named, like every other `run` error (CLI11's own errors have other exit codes).
  opt(cmd, "--threads", o.threads_text, "worker event loops (default: number of cores)");
  opt(cmd, "--max-connections", o.max_connections_text,
      "open connections at most (default: from RLIMIT_NOFILE)");
  cmd->add_flag("--no-splice", o.no_splice, "force the read/write fallback instead of splice(2)");
  opt(cmd, "--admin", o.admin, "ADDR:PORT of the read-only admin endpoint (off by default)");
  opt(cmd, "--admin-token", o.admin_token, "Bearer token the admin endpoint requires");
  cmd->add_flag("--admin-allow-remote", o.admin_allow_remote,
                "let --admin bind a non-loopback address (needs --admin-token)");
  opt(cmd, "--admin-records", o.admin_records_text,
      "N: recent records the admin page keeps in memory (default 10000, at most 8 MiB)");
  cmd->add_option("--fault", l.faults,
                  "NAME[:key=value,...]: inject a fault (repeatable; see docs/faults.md)");
  opt(cmd, "--fault-seed", o.fault_seed_text, "N: seed of the fault probability rolls");
  cmd->add_flag("--admin-faults", o.admin_faults,
                "let the admin endpoint add and delete faults (/api/faults)");
  opt(cmd, "--log-open-every", o.log_open_every,
      "also log an interim \"state\": \"open\" record per open connection this often");
  cmd->add_option("--log-level", o.log_level, "trace|debug|info|warn|error (operator log, stderr)");
  cmd->allow_extras();
  cmd->callback([cmd] {
    if (!cmd->remaining().empty()) {
      throw proxy::config_error(cmd->remaining().front() +
                                ": unknown flag or argument (see linesman run --help)");
    }
    if (o.threads_text) {
      o.threads = static_cast<unsigned>(positive(*o.threads_text, "--threads", 4096));
    }
    if (o.max_connections_text) {
      o.max_connections = positive(*o.max_connections_text, "--max-connections", 100'000'000);
    }
    const auto level = spdlog::level::from_str(o.log_level);
    if (o.log_level != "trace" && o.log_level != "debug" && o.log_level != "info" &&
        o.log_level != "warn" && o.log_level != "error") {
      throw proxy::config_error("--log-level: '" + o.log_level +
                                "' is not one of trace, debug, info, warn, error");
    }
    auto logger = spdlog::stderr_color_mt("linesman");
    logger->set_pattern("linesman: %l: %v");
    spdlog::set_default_logger(logger);
    spdlog::set_level(level);

    // Stamped before it is read: a change from here on is seen by --watch (proxy/config_watch.hpp).
    const auto loaded = o.config ? proxy::stamp_file(*o.config) : std::nullopt;
    proxy::run_config cfg = proxy::build_run_config(o.listener, o.config);
    cfg.threads = o.threads.value_or(0);
    cfg.max_connections = o.max_connections.value_or(0);
    cfg.no_splice = o.no_splice;
    cfg.log_level = o.log_level;
    if (o.admin) {
      cfg.admin.listen = *o.admin;  // flags beat the file's admin section
    }
    if (o.admin_token) {
      cfg.admin.token = *o.admin_token;
    }
    if (o.admin_allow_remote) {
      cfg.admin.allow_remote = true;
    }
    if (o.admin_records_text) {
      cfg.admin.ring_records = positive(*o.admin_records_text, "--admin-records", 1'000'000);
    }
    proxy::check_admin(cfg.admin, o.admin ? "--admin" : "admin.listen");
    if (o.admin_records_text && cfg.admin.listen.empty()) {
      throw proxy::config_error("--admin-records: needs --admin ADDR:PORT");
    }
    if (o.admin_faults && cfg.admin.listen.empty()) {
      throw proxy::config_error("--admin-faults: needs --admin ADDR:PORT");
    }
    cfg.admin.faults = o.admin_faults;
    if (o.fault_seed_text) {
      cfg.fault_seed = positive(*o.fault_seed_text, "--fault-seed", SIZE_MAX);
    }
    if (o.log_open_every) {
      cfg.log_open_every = proxy::parse_duration(*o.log_open_every, "--log-open-every");
      if (cfg.log_open_every.count() <= 0) {
        throw proxy::config_error("--log-open-every: must be more than 0");
      }
    }
    if (o.watch && !o.config) {
      throw proxy::config_error("--watch: needs --config FILE");
    }
    proxy::reload_source reload;
    if (o.config) {
      // A reload reads the file again and applies the same flags to it, as here.
      reload.load = [] { return proxy::build_run_config(o.listener, o.config); };
      reload.path = *o.config;
      reload.watch = o.watch;
      reload.loaded = loaded;
    }
    try {
      proxy::server srv(std::move(cfg), std::move(reload));
      exit_code() = srv.run();
    } catch (const proxy::listen_error& e) {
      std::cerr << "linesman: " << e.what() << "\n";
      exit_code() = 1;
    }
  });
}

}  // namespace linesman::tools
