#include "proxy/config_watch.hpp"

#include "proxy/config.hpp"

#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>

namespace linesman::proxy {

std::optional<file_stamp> stamp_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return std::nullopt;
  }
  return file_stamp{
      st.st_dev, st.st_ino, st.st_size,
      static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec};
}

config_watch::config_watch(asio::io_context& io, const std::string& path,
                           std::function<void()> on_change, std::optional<file_stamp> loaded)
    : fd_(io), settle_(io), on_change_(std::move(on_change)) {
  const std::filesystem::path p(path);
  name_ = p.filename().string();
  const std::string dir = p.has_parent_path() ? p.parent_path().string() : std::string(".");
  const int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    throw config_error("--watch: inotify: " + std::string(std::strerror(errno)));
  }
  // Writes in place (close after write), renames over the file, a new file, a removed one.
  const auto mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_ATTRIB;
  if (::inotify_add_watch(fd, dir.c_str(), mask) < 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw config_error("--watch: cannot watch directory '" + dir + "' of '" + path + "': " + why);
  }
  fd_.assign(fd);
  arm();
  if (loaded && stamp_file(path) != loaded) {
    changed();  // changed between the read and the watch: no event will say so
  }
}

void config_watch::stop() {
  stopped_ = true;
  std::error_code ignored;
  settle_.cancel();
  fd_.cancel(ignored);
}

void config_watch::arm() {
  fd_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
    if (ec || stopped_) {
      return;
    }
    drain_events();
    arm();
  });
}

void config_watch::drain_events() {
  // inotify events are variable-length (a header, then the NUL-padded name); the buffer is
  // aligned for the header and holds many events; read until the queue is empty (EAGAIN).
  alignas(inotify_event) std::array<char, 8192> buf{};
  bool relevant = false;
  for (int round = 0; round < 64; ++round) {
    const ssize_t n = ::read(fd_.native_handle(), buf.data(), buf.size());
    if (n <= 0) {
      break;
    }
    std::size_t off = 0;
    while (off + sizeof(inotify_event) <= static_cast<std::size_t>(n)) {
      inotify_event ev{};
      std::memcpy(&ev, buf.data() + off, sizeof ev);
      const std::size_t total = sizeof(inotify_event) + ev.len;
      if (off + total > static_cast<std::size_t>(n)) {
        break;
      }
      const char* name = buf.data() + off + sizeof(inotify_event);
      const std::string event_name = ev.len != 0 ? std::string(name, ::strnlen(name, ev.len)) : "";
      // The file itself, or Kubernetes' `..data` link swap (the file is a link through it).
      relevant = relevant || event_name == name_ || event_name == "..data";
      off += total;
    }
  }
  if (relevant) {
    changed();
  }
}

void config_watch::changed() {
  settle_.expires_after(kSettle);
  settle_.async_wait([this](const std::error_code& ec) {
    if (!ec && !stopped_) {
      on_change_();
    }
  });
}

}  // namespace linesman::proxy
