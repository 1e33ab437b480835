// server: the running proxy - log sinks, listeners bound on every worker with SO_REUSEPORT, one
// event loop per worker thread, signals (drain on SIGTERM/SIGINT; on SIGHUP log reopen and, with
// --config, a reload of the configuration) and limits.
#pragma once

#include "proxy/config.hpp"
#include "proxy/config_watch.hpp"

#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace linesman::proxy {

// listen_error: a listen address could not be bound; what() names the address, the reason and,
// when /proc shows it, the program holding the port.
class listen_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// reload_source: where a reload gets its configuration. `load` re-reads the --config file and
// applies the command-line flags to it again, as at start (flags survive reloads); it throws
// config_error naming the file, line and key. Empty `load`: no --config, SIGHUP only reopens
// the logs.
struct reload_source {
  std::function<run_config()> load;
  std::string path;    // the --config file (messages, --watch)
  bool watch = false;  // --watch: reload when the file changes (inotify)
  // loaded: the file's stamp taken before the configuration the server starts with was read
  // (proxy/config_watch.hpp), so a change made before the watch begins is not missed.
  std::optional<file_stamp> loaded;
};

class server {
 public:
  // server: opens every access log (config_error on failure) and binds every listener on every
  // worker (listen_error on failure). Prints "linesman: listening on ADDR (listener NAME)" on
  // stderr for each listener once bound (with the real port when 0 was asked).
  //
  // A reload (SIGHUP, or a change of the file with --watch) gives new connections the new
  // listeners, routes, upstreams and timeouts: a listener whose address stays keeps its sockets,
  // a new one is bound, a removed one stops accepting and its connections get its drain timeout.
  // Open connections keep the configuration they were accepted with. A file that fails to load,
  // validate or bind changes nothing: the error is logged and counted
  // (linesman_config_reloads_total{result="failure"}). Threads, --max-connections and the admin
  // endpoint are fixed at start.
  explicit server(run_config cfg, reload_source reload = {});
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  // run: serves until SIGTERM/SIGINT, then drains (each connection gets its listener's drain
  // timeout, the rest is recorded as proxy_shutdown), flushes the logs and returns 0.
  int run();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// format_endpoint: "127.0.0.1:80", "[::1]:8443".
std::string format_endpoint(const std::string& ip, unsigned port);

// default_max_connections: from RLIMIT_NOFILE (raised to its hard limit first): each connection
// holds two sockets; pipes are pooled per worker and held only while bytes sit in them.
std::size_t default_max_connections(bool no_splice);

}  // namespace linesman::proxy
