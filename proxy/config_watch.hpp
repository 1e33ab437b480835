// config_watch: `linesman run --watch`, the --config file watched with inotify (as Traefik's file
// provider does with providers.file.watch). Control plane: runs on the server's signal loop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include <asio.hpp>

namespace linesman::proxy {

// file_stamp: what tells one version of a file from another: the inode (an editor's or
// Kubernetes' rename over it), the size and the modification time (an edit in place).
struct file_stamp {
  dev_t dev = 0;
  ino_t ino = 0;
  off_t size = 0;
  std::int64_t mtime_ns = 0;
  bool operator==(const file_stamp&) const = default;
};
// stamp_file: the file's stamp now; nullopt when it cannot be stat'ed.
std::optional<file_stamp> stamp_file(const std::string& path);

// config_watch: calls `on_change` on `io`'s thread after `path` changed. It watches the file's
// directory, not the file: editors save by renaming a new file over the old one, and Kubernetes
// swaps a mounted ConfigMap's `..data` link, and neither is seen by a watch on the old inode.
// A burst of events (one save is often several) becomes one call kSettle after the last event.
// The object must outlive `io.run()` or be stopped first. Throws config_error naming the
// directory when inotify refuses it.
//
// `loaded`: the file's stamp when its configuration was read (before reading it). A change made
// after that read but before the watch began (the listeners already accept by then) would be
// seen by no event: when the file's stamp differs from `loaded` once the watch is in place, that
// counts as a change too.
class config_watch {
 public:
  static constexpr auto kSettle = std::chrono::milliseconds(200);

  config_watch(asio::io_context& io, const std::string& path, std::function<void()> on_change,
               std::optional<file_stamp> loaded = std::nullopt);
  config_watch(const config_watch&) = delete;
  config_watch& operator=(const config_watch&) = delete;

  // stop: no more calls; cancels the pending wait and timer. Idempotent.
  void stop();

 private:
  void arm();
  void drain_events();
  // changed: on_change once kSettle has passed without a further change.
  void changed();

  asio::posix::stream_descriptor fd_;
  asio::steady_timer settle_;
  std::string name_;  // the file's name within its directory
  std::function<void()> on_change_;
  bool stopped_ = false;
};

}  // namespace linesman::proxy
