// `linesman inspect [--json] PATH...`: what each file of raw first-flight bytes is.
#include "tools/commands.hpp"
#include "tools/inspect.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

namespace linesman::tools {

namespace {

// kMaxFileBytes: a first flight is at most a few records; refuse to slurp anything huge.
constexpr std::size_t kMaxFileBytes = 16U * 1024U * 1024U;

// read_file: the file's bytes; false (with `error` set) when it cannot be read.
bool read_file(const std::string& path, std::vector<std::uint8_t>& out, std::string& error) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    error = "is a directory";
    return false;
  }
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    error = std::strerror(errno);
    return false;
  }
  out.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  if (f.bad()) {
    error = "read error";
    return false;
  }
  if (out.size() > kMaxFileBytes) {
    error = "larger than 16 MiB, not a first flight";
    return false;
  }
  return true;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Read files of raw first-flight bytes and print what they are (ClientHello "
      "fields, JA3/JA4, or the plaintext protocol)");
  static std::vector<std::string> paths;
  static bool json = false;
  cmd->add_option("paths", paths, "files of raw first-flight bytes")->required();
  cmd->add_flag("--json", json, "one JSON object per line");
  cmd->callback([] {
    int failures = 0;
    for (const std::string& path : paths) {
      std::vector<std::uint8_t> bytes;
      std::string error;
      if (!read_file(path, bytes, error)) {
        std::cerr << "linesman inspect: cannot read " << path << ": " << error << "\n";
        ++failures;
        continue;
      }
      const nlohmann::ordered_json line = inspect_json(path, bytes);
      if (json) {
        std::cout << line.dump() << "\n";
      } else {
        std::cout << inspect_text(line);
      }
    }
    std::cout.flush();
    exit_code() = failures == 0 ? 0 : 1;
  });
}

}  // namespace linesman::tools
