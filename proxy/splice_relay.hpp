// splice_relay: moves one direction of an established connection after the first flights, with
// splice(2) through a pipe (kernel to kernel, no copy to userspace) or, as a fallback, with
// read/write through a userspace buffer.
//
// Ownership: the caller (the connection) owns both sockets and keeps them alive until the relay
// returns; the relay borrows them. A splice relay owns a pipe (pipe_fds) only while bytes sit in
// it: it takes one from the per-worker pipe_pool per fill and gives it back once drained.
#pragma once

#include "proxy/fresh_socket.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <asio.hpp>

namespace linesman::proxy {

// pipe_fds: one pipe, both ends; closes them on destruction. Movable, not copyable.
class pipe_fds {
 public:
  pipe_fds() = default;
  ~pipe_fds();
  pipe_fds(pipe_fds&& o) noexcept;
  pipe_fds& operator=(pipe_fds&& o) noexcept;
  pipe_fds(const pipe_fds&) = delete;
  pipe_fds& operator=(const pipe_fds&) = delete;

  // open: pipe2(O_NONBLOCK|O_CLOEXEC). Returns the errno on failure (EMFILE...), 0 on success.
  int open();
  [[nodiscard]] bool valid() const { return r_ >= 0; }
  [[nodiscard]] int read_end() const { return r_; }
  [[nodiscard]] int write_end() const { return w_; }
  void reset();

 private:
  int r_ = -1;
  int w_ = -1;
};

// pipe_pool: empty pipes kept for reuse by one worker (single-threaded; not thread-safe). Saves
// two syscalls and a pipe allocation per connection direction.
class pipe_pool {
 public:
  static constexpr std::size_t kMaxPooled = 64;
  // take: a pooled pipe or a new one; returns an invalid pipe_fds and sets `err` on failure.
  pipe_fds take(int& err);
  // give: return a pipe known to be empty; a pipe that may hold bytes must be dropped instead.
  void give(pipe_fds&& p);

 private:
  std::vector<pipe_fds> free_;
};

// relay_end: why a relay returned.
enum class relay_end : std::uint8_t {
  src_eof,    // the source sent FIN and every byte read from it was written
  src_reset,  // ECONNRESET reading the source
  src_error,  // another error reading the source (errno in relay_result)
  dst_reset,  // EPIPE/ECONNRESET writing the destination
  dst_error,  // another error writing the destination
  cancelled,  // the connection asked the relay to stop (abort flag or operation_aborted)
  no_splice,  // splice is not supported for this pair (EINVAL before any byte): use copy_stream
};

struct relay_result {
  relay_end end = relay_end::cancelled;
  int err = 0;  // errno for *_error / *_reset
};

// relay_counters: where a relay accounts its bytes and activity (owned by the connection).
struct relay_counters {
  std::uint64_t* from = nullptr;  // bytes read from the source
  std::uint64_t* to = nullptr;    // bytes written to the destination
  std::chrono::steady_clock::time_point* last_activity = nullptr;
  const bool* abort = nullptr;  // checked after every wake-up
};

// splice_relay: one direction's stream phase, src -> pipe -> dst with
// SPLICE_F_MOVE|SPLICE_F_NONBLOCK, as a callback state machine: on EAGAIN it arms one
// async_wait (wait_read on the source, or wait_write on the destination while bytes sit in the
// pipe) and returns. No coroutine frame lives while it waits, so an idle direction costs one
// pending reactor operation; a pipe is taken from the worker's pool only while bytes sit in it.
// Both sockets must be non-blocking.
//
// Ownership: a member of its connection, which owns both sockets and the counters and keeps them
// (and the pool, the worker's) alive until `on_end` ran. start() may call `on_end` before it
// returns; after `on_end` the relay issues no further operation and may be started again. A
// pipe that still holds bytes when the relay ends is closed, never returned to the pool.
// Ends with no_splice (no byte in flight) when splice is not supported for the pair or no pipe
// could be opened (EMFILE): the owner goes on with copy_stream.
class splice_relay {
 public:
  using end_fn = void (*)(void* owner, int tag, const relay_result& r);

  // kBurstBytes: after moving this much without waiting, the relay yields to the other
  // connections of its worker (a source that is always readable would otherwise keep the
  // thread); a burst ends after the chunk that crosses it.
  static constexpr std::size_t kBurstBytes = std::size_t{1} << 20;

  // wait_first: the source was read to its end just now: wait before the first splice.
  void start(tcp_socket& src, tcp_socket& dst, pipe_pool& pool, relay_counters c, end_fn on_end,
             void* owner, int tag, bool wait_first = false);

 private:
  void step();
  // fill: one splice from the source into the (empty) pipe; drain: the pipe out to the
  // destination. Each returns false when it waited or ended the relay (step returns then).
  bool fill(std::size_t& burst);
  bool drain();
  // wait: one async_wait on `s` (the source's readability, or the destination's writability
  // while bytes sit in the pipe), then step() again, or end() if cancelled or aborted.
  void wait(tcp_socket& s, asio::socket_base::wait_type what);
  void end(const relay_result& r);

  tcp_socket* src_ = nullptr;
  tcp_socket* dst_ = nullptr;
  pipe_pool* pool_ = nullptr;
  relay_counters c_;
  end_fn on_end_ = nullptr;
  void* owner_ = nullptr;
  pipe_fds pipe_;              // held only while in_pipe_ > 0
  std::uint32_t in_pipe_ = 0;  // bytes read into pipe_ and not yet written out
  int tag_ = 0;
  bool moved_any_ = false;
};

// copy_stream: the read/write fallback through `buf` (owned by the caller for the relay's life).
asio::awaitable<relay_result> copy_stream(tcp_socket& src, tcp_socket& dst,
                                          std::span<std::uint8_t> buf, relay_counters c);

// classify_read_error / classify_write_error: map an error from the source / destination.
relay_result classify_read_error(const std::error_code& ec);
relay_result classify_write_error(const std::error_code& ec);

}  // namespace linesman::proxy
