// log_sink: the access-log writer of one file. Connections hand over finished records; one
// writer thread serializes them straight into its buffer (append_record, in the sink's format)
// and writes them in batches, so neither JSON work nor a slow disk ever runs on a data-plane
// thread.
#pragma once

#include "proxy/access_record.hpp"
#include "proxy/record_format.hpp"
#include "proxy/record_ring.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace linesman::proxy {

class log_sink {
 public:
  // kDefaultCapacity: records waiting for the writer before new ones are dropped (and counted).
  // A record with its strings is 1-2 KB: the bound keeps a stuck disk under about 30 MB, and
  // lets the writer fall behind by a second or two of a busy proxy's connections.
  static constexpr std::size_t kDefaultCapacity = 16384;

  // log_sink: opens `path` for appending ("-" = stdout) and starts the writer thread. Throws
  // config_error naming the path when it cannot be opened. Records are written in `format`.
  // `ring` (the admin page's recent records, may be null; must outlive the sink) gets every final
  // record once its batch is written, as linesman JSON whatever `format` is.
  explicit log_sink(std::string path, std::size_t capacity = kDefaultCapacity,
                    log_format format = log_format::linesman, record_ring* ring = nullptr);
  ~log_sink();
  log_sink(const log_sink&) = delete;
  log_sink& operator=(const log_sink&) = delete;

  // push: hands `r` to the writer; never blocks on I/O. When the queue holds `capacity` records
  // the record is dropped and counted (reported on stderr at most once a second).
  void push(access_record&& r);
  // request_reopen: reopen the file before the next write (SIGHUP, for logrotate).
  void request_reopen();
  // stop: write everything queued, then join the writer. Idempotent.
  void stop();

  // dropped: records lost, to a full queue or to a failed write (ENOSPC, EIO).
  [[nodiscard]] std::uint64_t dropped() const { return dropped_.load(); }
  // drop_reason: why a record was lost (the reason label of linesman_records_dropped_total).
  enum class drop_reason : std::uint8_t { queue_full, write_error };
  // dropped_total: dropped() summed over every sink of the process (for /metrics), all reasons
  // or one.
  [[nodiscard]] static std::uint64_t dropped_total();
  [[nodiscard]] static std::uint64_t dropped_total(drop_reason why);
  // written_total: final records (not interim "open" ones) written by every sink of the process
  // (linesman_records_written_total): with dropped_total it accounts for every connection ended.
  [[nodiscard]] static std::uint64_t written_total();
  [[nodiscard]] std::uint64_t written() const { return written_.load(); }
  [[nodiscard]] const std::string& path() const { return path_; }
  [[nodiscard]] log_format format() const { return style_.format; }

 private:
  void run();
  void reopen();
  // write_all: false when the write failed (logged at most once a minute).
  bool write_all(const std::string& data);
  void count_dropped(std::uint64_t n, drop_reason why);

  std::string path_;
  std::size_t capacity_;
  record_style style_;
  record_ring* ring_ = nullptr;
  int fd_ = -1;
  bool owns_fd_ = false;

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<access_record> queue_;
  bool stopping_ = false;
  // writer_waiting_: the writer sleeps for new records (push wakes it only then, so a busy
  // proxy costs one wake-up per batch, not one per connection). Guarded by mu_.
  bool writer_waiting_ = false;
  std::atomic<bool> reopen_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> written_{0};
  // Writer thread only: when a write error was last reported.
  bool write_error_logged_ = false;
  std::chrono::steady_clock::time_point last_write_error_{};
  std::thread thread_;
};

}  // namespace linesman::proxy
