#include "proxy/log_sink.hpp"

#include "proxy/config.hpp"

#include <unistd.h>

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

record numbered(int i) {
  record r;
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

}  // namespace
}  // namespace linesman::proxy
