#include "proxy/log_sink.hpp"

#include "proxy/config.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

// kBatchDelay / kBatchRecords: how long the writer lets records gather after the first one, unless
// that many are already queued.
// At 10,000 connections a second, 20 ms make batches of ~200 records: the data plane pays one
// futex wake per batch instead of one per few connections (measured with strace -c).
constexpr auto kBatchDelay = std::chrono::milliseconds(20);
constexpr std::size_t kBatchRecords = 256;
// kKeptRecords / kKeptBytes: what the writer keeps allocated between batches. The queue and the
// batch swap every round, and a vector or string never gives capacity back by itself: without
// this, one burst (a disk that stalled, a flood of short connections) left up to the queue's
// whole capacity of records, and their text, resident for the life of the process.
constexpr std::size_t kKeptRecords = 1024;
constexpr std::size_t kKeptBytes = std::size_t{1} << 20;

// kWriteErrorEvery: a failing disk (ENOSPC, EIO) is reported at most this often; the records
// lost meanwhile are counted (dropped(), linesman_records_dropped_total).
constexpr auto kWriteErrorEvery = std::chrono::minutes(1);

// records_lost: every sink's dropped records by drop_reason, for /metrics (process-wide).
std::array<std::atomic<std::uint64_t>, 2> records_lost{};
// finals_written: the final records written (process-wide).
std::atomic<std::uint64_t> finals_written{0};

std::uint64_t finals_in(const std::vector<access_record>& batch) {
  std::uint64_t n = 0;
  for (const auto& r : batch) {
    n += r.open_state ? 0 : 1;
  }
  return n;
}

// open_log: the access log for appending, or -1 with errno set. Mode 0640: records hold client
// addresses, SNI and fingerprints. O_NONBLOCK so that a FIFO does not block the open (it is then
// refused, as is anything but a regular file or a character device such as /dev/stdout).
int open_log(const std::string& path, std::string& why) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NONBLOCK, 0640);
  if (fd < 0) {
    why = std::strerror(errno);
    return -1;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !(S_ISREG(st.st_mode) || S_ISCHR(st.st_mode))) {
    why = S_ISFIFO(st.st_mode) ? "a FIFO (give a regular file, or - for stdout)"
                               : "not a regular file";
    ::close(fd);
    return -1;
  }
  // Writes block again, as on any file: the writer thread is the only one that waits on them.
  (void)::fcntl(fd, F_SETFL, O_APPEND);
  return fd;
}

}  // namespace

log_sink::log_sink(std::string path, std::size_t capacity, log_format format, record_ring* ring)
    : path_(std::move(path)),
      capacity_(capacity),
      style_{format, format == log_format::linesman ? std::string() : local_host_name()},
      ring_(ring) {
  if (path_ == "-") {
    fd_ = STDOUT_FILENO;
  } else {
    std::string why;
    fd_ = open_log(path_, why);
    if (fd_ < 0) {
      throw config_error("--access-log: cannot write '" + path_ + "': " + why);
    }
    owns_fd_ = true;
  }
  queue_.reserve(256);
  thread_ = std::thread([this] { run(); });
}

log_sink::~log_sink() {
  stop();
  if (owns_fd_ && fd_ >= 0) {
    ::close(fd_);
  }
}

void log_sink::push(access_record&& r) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity_) {
      count_dropped(1, drop_reason::queue_full);
      return;
    }
    queue_.push_back(std::move(r));
    wake = writer_waiting_;
    writer_waiting_ = false;
  }
  if (wake) {
    cv_.notify_one();
  }
}

void log_sink::request_reopen() {
  reopen_.store(true);
  cv_.notify_one();
}

void log_sink::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) {
      return;
    }
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) {
    thread_.join();
  }
}

void log_sink::reopen() {
  if (!owns_fd_) {
    return;
  }
  std::string why;
  const int fd = open_log(path_, why);
  if (fd < 0) {
    spdlog::error("access log: cannot reopen '{}': {}; still writing to the old file", path_, why);
    return;
  }
  ::close(fd_);
  fd_ = fd;
  spdlog::info("access log: reopened '{}'", path_);
}

std::uint64_t log_sink::dropped_total() { return records_lost[0].load() + records_lost[1].load(); }

std::uint64_t log_sink::dropped_total(drop_reason why) {
  return records_lost[static_cast<std::size_t>(why)].load();
}

std::uint64_t log_sink::written_total() { return finals_written.load(); }

void log_sink::count_dropped(std::uint64_t n, drop_reason why) {
  dropped_.fetch_add(n);
  records_lost[static_cast<std::size_t>(why)].fetch_add(n);
}

bool log_sink::write_all(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd_, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      const auto now = std::chrono::steady_clock::now();
      if (!write_error_logged_ || now - last_write_error_ >= kWriteErrorEvery) {
        spdlog::error(
            "access log: write to '{}' failed: {}; records are dropped and counted in "
            "linesman_records_dropped_total (this message repeats at most once a minute)",
            path_, std::strerror(errno));
        write_error_logged_ = true;
        last_write_error_ = now;
      }
      // A batch that went out in part (the disk filled up mid-write) is taken back, so the file
      // holds whole lines only and the next batch, once there is room, starts on a fresh line.
      struct stat st {};
      if (off > 0 && ::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) &&
          st.st_size >= static_cast<off_t>(off)) {
        (void)::ftruncate(fd_, st.st_size - static_cast<off_t>(off));
      }
      return false;
    }
    off += static_cast<std::size_t>(n);
  }
  return true;
}

void log_sink::run() {
  std::vector<access_record> batch;
  batch.reserve(256);
  std::string out;
  std::vector<ring_entry> for_ring;
  std::uint64_t reported_drops = 0;
  auto last_report = std::chrono::steady_clock::now();
  for (;;) {
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      writer_waiting_ = true;
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [this] { return stopping_ || !queue_.empty() || reopen_.load(); });
      writer_waiting_ = false;
      if (!stopping_ && !queue_.empty() && queue_.size() < kBatchRecords) {
        // Let a burst gather so it goes out in one write(2) and one wake-up; records are at most
        // kBatchDelay late. Pushes during this pause do not notify (writer_waiting_ is false).
        lock.unlock();
        std::this_thread::sleep_for(kBatchDelay);
        lock.lock();
      }
      batch.swap(queue_);
      stopping = stopping_;
    }
    if (reopen_.exchange(false)) {
      reopen();
    }
    out.clear();
    for (const auto& r : batch) {
      const std::size_t from = out.size();
      append_record(out, r, style_);
      if (ring_ != nullptr && !r.open_state) {
        std::string line;
        if (style_.format == log_format::linesman) {
          line.assign(out, from, out.size() - from - 1);  // the bytes just written, no newline
        } else {
          append_linesman(line, r);
        }
        for_ring.push_back(make_ring_entry(r, std::move(line)));
      }
    }
    if (!out.empty()) {
      if (write_all(out)) {
        written_.fetch_add(batch.size());
        finals_written.fetch_add(finals_in(batch));
      } else {
        // A batch is one write: after a failure its records are counted lost (a partly
        // written line cannot be told apart anyway).
        count_dropped(batch.size(), drop_reason::write_error);
        reported_drops += batch.size();  // the write error message covers them
      }
    }
    if (!for_ring.empty()) {
      ring_->push(std::move(for_ring));
      for_ring.clear();
      if (for_ring.capacity() > kKeptRecords) {
        std::vector<ring_entry>().swap(for_ring);
      }
    }
    batch.clear();
    if (batch.capacity() > kKeptRecords) {
      std::vector<access_record>().swap(batch);
      batch.reserve(kBatchRecords);
    }
    if (out.capacity() > kKeptBytes) {
      std::string().swap(out);
    }
    const auto now = std::chrono::steady_clock::now();
    const auto drops = dropped_.load();
    if (drops != reported_drops && now - last_report >= std::chrono::seconds(1)) {
      spdlog::warn("access log '{}': {} records dropped (queue full; disk too slow)", path_,
                   drops - reported_drops);
      reported_drops = drops;
      last_report = now;
    }
    if (stopping) {
      std::lock_guard lock(mu_);
      if (queue_.empty()) {
        break;
      }
    }
  }
}

}  // namespace linesman::proxy
