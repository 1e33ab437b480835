#include "proxy/log_sink.hpp"

#include "proxy/config.hpp"
#include "proxy/live.hpp"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

std::vector<nlohmann::json> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<nlohmann::json> out;
  std::string line;
  while (std::getline(in, line)) {
    out.push_back(nlohmann::json::parse(line));
  }
  return out;
}

access_record numbered(int i) {
  access_record r;
  r.id = "t-" + std::to_string(i);
  r.ts = std::chrono::system_clock::now();
  return r;
}

std::string temp_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          (std::string("linesman_sink_") + std::to_string(::getpid()) + "_" + name))
      .string();
}

TEST(LogSink, WritesEveryRecordAsOneJsonLineAndFlushesOnStop) {
  const auto path = temp_path("a.log");
  std::filesystem::remove(path);
  {
    log_sink sink(path);
    for (int i = 0; i < 1000; ++i) {
      sink.push(numbered(i));
    }
    sink.stop();
    EXPECT_EQ(sink.written(), 1000U);
    EXPECT_EQ(sink.dropped(), 0U);
  }
  const auto lines = read_lines(path);
  ASSERT_EQ(lines.size(), 1000U);
  EXPECT_EQ(lines.front()["id"], "t-0");
  EXPECT_EQ(lines.back()["id"], "t-999");
  std::filesystem::remove(path);
}

TEST(LogSink, ReopenAfterRenameWritesToTheNewFile) {
  const auto path = temp_path("b.log");
  const auto rotated = path + ".1";
  std::filesystem::remove(path);
  std::filesystem::remove(rotated);
  log_sink sink(path);
  sink.push(numbered(1));
  for (int i = 0; i < 200 && sink.written() < 1; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(sink.written(), 1U);
  std::filesystem::rename(path, rotated);  // what logrotate does before SIGHUP
  sink.request_reopen();
  for (int i = 0; i < 200 && !std::filesystem::exists(path); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  sink.push(numbered(2));
  sink.stop();
  const auto old_lines = read_lines(rotated);
  const auto new_lines = read_lines(path);
  ASSERT_EQ(old_lines.size(), 1U);
  ASSERT_EQ(new_lines.size(), 1U);
  EXPECT_EQ(new_lines[0]["id"], "t-2");
  std::filesystem::remove(path);
  std::filesystem::remove(rotated);
}

TEST(LogSink, FullQueueDropsAndCountsInsteadOfBlocking) {
  const auto path = temp_path("c.log");
  log_sink sink(path, 4);
  // Pushing far more than the capacity in a tight loop must never block; some may be dropped.
  for (int i = 0; i < 10000; ++i) {
    sink.push(numbered(i));
  }
  sink.stop();
  EXPECT_EQ(sink.written() + sink.dropped(), 10000U);
  EXPECT_EQ(read_lines(path).size(), sink.written());
  std::filesystem::remove(path);
}

TEST(LogSink, UnopenableFileNamesThePath) {
  try {
    log_sink sink("/nonexistent-dir/x.log");
    FAIL() << "no error";
  } catch (const config_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent-dir/x.log"), std::string::npos);
  }
}

// Issue 20: the access log holds client IPs, SNI and fingerprints: not world-readable.
TEST(LogSink, NewFileIsCreated0640) {
  const auto path = temp_path("mode.log");
  std::filesystem::remove(path);
  const mode_t old = ::umask(022);
  {
    log_sink sink(path);
    sink.stop();
  }
  ::umask(old);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0640U);
  std::filesystem::remove(path);
}

// dropped_metric: the value of linesman_records_dropped_total{reason=...} in `text`, -1 when
// absent.
long dropped_metric(const std::string& text, const std::string& reason = "write_error") {
  const std::string key = "\nlinesman_records_dropped_total{reason=\"" + reason + "\"} ";
  const auto at = text.find(key);
  return at == std::string::npos ? -1 : std::stol(text.substr(at + key.size()));
}

// Issue 20: records a failed write loses (ENOSPC on /dev/full) are counted as dropped, and the
// count reaches /metrics as linesman_records_dropped_total.
TEST(LogSink, FailedWritesCountAsDropped) {
  if (::access("/dev/full", W_OK) != 0) {
    GTEST_SKIP() << "/dev/full is not writable here";
  }
  const live_hub hub;
  const auto before = dropped_metric(format_metrics(hub, {}));
  log_sink sink("/dev/full");
  for (int i = 0; i < 3; ++i) {
    sink.push(numbered(i));
  }
  sink.stop();
  EXPECT_EQ(sink.dropped(), 3U);
  EXPECT_EQ(sink.written(), 0U);
  EXPECT_EQ(dropped_metric(format_metrics(hub, {})), before + 3);
}

// Issue 16: records a full queue loses are counted under their own reason; written final
// records reach linesman_records_written_total, interim ones do not.
TEST(LogSink, QueueFullDropsAndWrittenFinalsAreCounted) {
  const live_hub hub;
  const auto before_full = dropped_metric(format_metrics(hub, {}), "queue_full");
  const auto before_written = log_sink::written_total();
  const auto path = temp_path("bounded.log");
  std::filesystem::remove(path);
  {
    log_sink sink(path, 4);  // a queue of 4: a burst of 1,000 pushes cannot all fit
    for (int i = 0; i < 1000; ++i) {
      sink.push(numbered(i));
    }
    auto interim = numbered(1000);
    interim.open_state = true;
    sink.push(std::move(interim));
    sink.stop();
    EXPECT_GT(sink.dropped(), 0U);
    EXPECT_EQ(sink.written() + sink.dropped(), 1001U);
    EXPECT_EQ(dropped_metric(format_metrics(hub, {}), "queue_full"),
              before_full + static_cast<long>(sink.dropped()));
    const auto finals = log_sink::written_total() - before_written;
    EXPECT_TRUE(finals == sink.written() || finals + 1 == sink.written());
  }
  std::filesystem::remove(path);
}

// Issue 16: a write that fails after part of a batch went out (a disk filling up) is taken back,
// so the file never holds half a line and the next record starts on a fresh line.
TEST(LogSink, PartialWriteIsTakenBack) {
  const auto dir = std::filesystem::temp_directory_path() / "linesman-partial";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "small.log").string();
  std::filesystem::remove(path);
  // A file size limit stands in for a small disk: writes past it fail with EFBIG after the
  // part that fits (the signal it raises is ignored for the test).
  rlimit old{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old;
  small.rlim_cur = 1000;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &small), 0);
  {
    log_sink sink(path);
    for (int i = 0; i < 20; ++i) {  // one batch, several KB: only part of it fits
      sink.push(numbered(i));
    }
    sink.stop();
    EXPECT_EQ(sink.written(), 0U);
    EXPECT_EQ(sink.dropped(), 20U);
  }
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &old), 0);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_EQ(std::filesystem::file_size(path), 0U) << "half a batch stayed in the file";
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace linesman::proxy
