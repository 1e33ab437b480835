// config_watch: `linesman run --watch`, the --config file watched with inotify (as Traefik's file
// provider does with providers.file.watch). Control plane: runs on the server's signal loop.
#pragma once

#include <functional>
#include <string>

#include <asio.hpp>

namespace linesman::proxy {

// config_watch: calls `on_change` on `io`'s thread after `path` changed. It watches the file's
// directory, not the file: editors save by renaming a new file over the old one, and Kubernetes
// swaps a mounted ConfigMap's `..data` link, and neither is seen by a watch on the old inode.
// A burst of events (one save is often several) becomes one call kSettle after the last event.
// The object must outlive `io.run()` or be stopped first. Throws config_error naming the
// directory when inotify refuses it.
class config_watch {
 public:
  static constexpr auto kSettle = std::chrono::milliseconds(200);

  config_watch(asio::io_context& io, const std::string& path, std::function<void()> on_change);
  config_watch(const config_watch&) = delete;
  config_watch& operator=(const config_watch&) = delete;

  // stop: no more calls; cancels the pending wait and timer. Idempotent.
  void stop();

 private:
  void arm();
  void drain_events();

  asio::posix::stream_descriptor fd_;
  asio::steady_timer settle_;
  std::string name_;  // the file's name within its directory
  std::function<void()> on_change_;
  bool stopped_ = false;
};

}  // namespace linesman::proxy
