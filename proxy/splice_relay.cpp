#include "proxy/splice_relay.hpp"

#include "proxy/awaitable.hpp"
#include "proxy/exact_alloc.hpp"
#include "proxy/live.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace linesman::proxy {
namespace {

// kPipeBytes: the pipe size asked for with F_SETPIPE_SZ (the default holds 64 KiB, 16 pages).
// A larger pipe moves more per splice pair and per wake-up when a bulk sender keeps the socket
// full; it costs the kernel one page slot per 4 KiB only while bytes sit in it (pooled pipes are
// empty). Capped by /proc/sys/fs/pipe-max-size (1 MiB by default); if refused, the pipe keeps
// its default size and splice simply moves less per call.
constexpr int kPipeBytes = 1 << 20;
// kChunk: the most one splice call asks for: the pipe's size.
constexpr std::size_t kChunk = kPipeBytes;

bool aborted(const relay_counters& c) { return c.abort != nullptr && *c.abort; }

void touch(const relay_counters& c) {
  if (c.last_activity != nullptr) {
    *c.last_activity = std::chrono::steady_clock::now();
  }
}

}  // namespace

pipe_fds::~pipe_fds() { reset(); }

pipe_fds::pipe_fds(pipe_fds&& o) noexcept : r_(o.r_), w_(o.w_) { o.r_ = o.w_ = -1; }

pipe_fds& pipe_fds::operator=(pipe_fds&& o) noexcept {
  if (this != &o) {
    reset();
    r_ = o.r_;
    w_ = o.w_;
    o.r_ = o.w_ = -1;
  }
  return *this;
}

int pipe_fds::open() {
  reset();
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
    return errno;
  }
  r_ = fds[0];
  w_ = fds[1];
  (void)::fcntl(w_, F_SETPIPE_SZ, kPipeBytes);  // best effort, see kPipeBytes
  return 0;
}

void pipe_fds::reset() {
  if (r_ >= 0) {
    ::close(r_);
  }
  if (w_ >= 0) {
    ::close(w_);
  }
  r_ = w_ = -1;
}

pipe_fds pipe_pool::take(int& err) {
  err = 0;
  if (!free_.empty()) {
    pipe_fds p = std::move(free_.back());
    free_.pop_back();
    return p;
  }
  pipe_fds p;
  err = p.open();
  return p;
}

void pipe_pool::give(pipe_fds&& p) {
  if (p.valid() && free_.size() < kMaxPooled) {
    free_.push_back(std::move(p));
  }
}

relay_result classify_read_error(const std::error_code& ec) {
  if (ec == asio::error::eof) {
    return {relay_end::src_eof, 0};
  }
  if (ec == asio::error::operation_aborted) {
    return {relay_end::cancelled, 0};
  }
  if (ec == asio::error::connection_reset) {
    return {relay_end::src_reset, ECONNRESET};
  }
  return {relay_end::src_error,
          ec.category() == asio::error::get_system_category() ? ec.value() : EIO};
}

relay_result classify_write_error(const std::error_code& ec) {
  if (ec == asio::error::operation_aborted) {
    return {relay_end::cancelled, 0};
  }
  if (ec == asio::error::connection_reset || ec == asio::error::broken_pipe) {
    return {relay_end::dst_reset, ec.value()};
  }
  return {relay_end::dst_error,
          ec.category() == asio::error::get_system_category() ? ec.value() : EIO};
}

void splice_relay::start(tcp_socket& src, tcp_socket& dst, pipe_pool& pool, relay_counters c,
                         end_fn on_end, void* owner, int tag, bool wait_first) {
  src_ = &src;
  dst_ = &dst;
  pool_ = &pool;
  c_ = c;
  on_end_ = on_end;
  owner_ = owner;
  tag_ = tag;
  in_pipe_ = 0;
  moved_any_ = false;
  if (wait_first) {
    wait(src, asio::socket_base::wait_read);
    return;
  }
  step();
}

void splice_relay::end(const relay_result& r) {
  if (in_pipe_ == 0) {
    pool_->give(std::move(pipe_));
  } else {
    pipe_.reset();  // bytes we could not deliver: the connection is ending anyway
    in_pipe_ = 0;
  }
  on_end_(owner_, tag_, r);
}

void splice_relay::wait(tcp_socket& s, asio::socket_base::wait_type what) {
  s.async_wait(what, exact([this](const std::error_code& ec) {
                 if (ec || aborted(c_)) {
                   return end({relay_end::cancelled, 0});
                 }
                 step();
               }));
}

void splice_relay::step() {
  std::size_t burst = 0;
  for (;;) {
    if (aborted(c_)) {
      return end({relay_end::cancelled, 0});
    }
    if (burst >= kBurstBytes) {
      // Yield: other connections of this worker get their turn before the next chunk.
      asio::post(src_->get_executor(), [this] { step(); });
      return;
    }
    if (in_pipe_ == 0 && !fill(burst)) {
      return;
    }
    if (!drain()) {
      return;
    }
  }
}

bool splice_relay::fill(std::size_t& burst) {
  if (!pipe_.valid()) {
    int perr = 0;
    pipe_ = pool_->take(perr);
    if (!pipe_.valid()) {
      // EMFILE/ENFILE: no byte sits in any pipe of ours, so copy_stream can take over.
      end({relay_end::no_splice, perr});
      return false;
    }
  }
  for (;;) {
    // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
    const ssize_t n = ::splice(src_->native_handle(), nullptr, pipe_.write_end(), nullptr, kChunk,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err == EAGAIN) {
        pool_->give(std::move(pipe_));  // still empty: a waiting direction holds no pipe
        wait(*src_, asio::socket_base::wait_read);
      } else if (err == EINVAL && !moved_any_) {
        end({relay_end::no_splice, err});
      } else {
        end({err == ECONNRESET ? relay_end::src_reset : relay_end::src_error, err});
      }
      return false;
    }
    if (n == 0) {
      end({relay_end::src_eof, 0});
      return false;
    }
    moved_any_ = true;
    burst += static_cast<std::size_t>(n);
    in_pipe_ = static_cast<std::uint32_t>(n);
    bump_counter(*c_.from, static_cast<std::uint64_t>(n));  // read live by the admin
    touch(c_);
    return true;
  }
}

bool splice_relay::drain() {
  // Everything in the pipe goes out before we read again, so a slow destination pushes back on
  // the source through TCP flow control instead of our memory.
  while (in_pipe_ > 0) {
    const ssize_t m = ::splice(pipe_.read_end(), nullptr, dst_->native_handle(), nullptr, in_pipe_,
                               SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (m < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err == EAGAIN) {
        wait(*dst_, asio::socket_base::wait_write);
      } else {
        end({err == EPIPE || err == ECONNRESET ? relay_end::dst_reset : relay_end::dst_error, err});
      }
      return false;
    }
    in_pipe_ -= static_cast<std::uint32_t>(m);
    *c_.to += static_cast<std::uint64_t>(m);
    touch(c_);
  }
  return true;
}

asio::awaitable<relay_result> copy_stream(tcp_socket& src, tcp_socket& dst,
                                          std::span<std::uint8_t> buf, relay_counters c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  for (;;) {
    auto [rec, n] = co_await src.async_read_some(asio::buffer(buf.data(), buf.size()), kTuple);
    if (aborted(c)) {
      co_return relay_result{relay_end::cancelled, 0};
    }
    if (rec) {
      co_return classify_read_error(rec);
    }
    bump_counter(*c.from, n);
    touch(c);
    auto [wec, m] = co_await asio::async_write(dst, asio::buffer(buf.data(), n), kTuple);
    *c.to += m;
    if (wec) {
      co_return classify_write_error(wec);
    }
    touch(c);
    if (aborted(c)) {
      co_return relay_result{relay_end::cancelled, 0};
    }
  }
}

}  // namespace linesman::proxy
