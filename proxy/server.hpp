// server: the running proxy - log sinks, listeners bound on every worker with SO_REUSEPORT, one
// event loop per worker thread, signals (drain on SIGTERM/SIGINT, log reopen on SIGHUP) and limits.
#pragma once

#include "proxy/config.hpp"

#include <memory>
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

class server {
 public:
  // server: opens every access log (config_error on failure) and binds every listener on every
  // worker (listen_error on failure). Prints "linesman: listening on ADDR (listener NAME)" on
  // stderr for each listener once bound (with the real port when 0 was asked).
  explicit server(run_config cfg);
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
