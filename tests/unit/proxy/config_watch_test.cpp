// proxy/config_watch.hpp: a change of the --config file is seen, also one made after the file
// was read and before the watch began (the window in which the listeners already accept).
#include "proxy/config_watch.hpp"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

struct temp_file {
  std::filesystem::path dir;
  std::filesystem::path path;
  temp_file() {
    dir = std::filesystem::temp_directory_path() /
          ("linesman-watch-" + std::to_string(::getpid()) + "-" +
           std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(dir);
    path = dir / "linesman.yaml";
    write("listeners: []\n");
  }
  ~temp_file() {
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }
  // write: a new file renamed over the old one, as editors and the tests' configs do.
  void write(const std::string& text) const {
    const auto tmp = dir / "linesman.yaml.new";
    std::ofstream(tmp) << text;
    std::filesystem::rename(tmp, path);
  }
};

int changes_seen(const temp_file& f, std::optional<file_stamp> loaded) {
  asio::io_context io;
  int calls = 0;
  config_watch w(
      io, f.path.string(), [&] { ++calls; }, loaded);
  io.run_for(config_watch::kSettle * 3);
  w.stop();
  return calls;
}

TEST(ConfigWatch, AChangeBeforeTheWatchBeganIsSeen) {
  temp_file f;
  const auto loaded = stamp_file(f.path.string());
  ASSERT_TRUE(loaded);
  f.write("listeners: [] # changed after the read, before the watch\n");
  EXPECT_EQ(changes_seen(f, loaded), 1);
}

TEST(ConfigWatch, AnUnchangedFileIsNoChange) {
  temp_file f;
  EXPECT_EQ(changes_seen(f, stamp_file(f.path.string())), 0);
  EXPECT_EQ(changes_seen(f, std::nullopt), 0);
}

TEST(ConfigWatch, StampsTellARenameAndAnEditApart) {
  temp_file f;
  const auto a = stamp_file(f.path.string());
  f.write("listeners: []\n");  // same bytes, a new inode
  const auto b = stamp_file(f.path.string());
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_FALSE(stamp_file((f.dir / "missing.yaml").string()));
}

}  // namespace
}  // namespace linesman::proxy
