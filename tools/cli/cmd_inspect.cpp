// `linesman inspect [--json] [--stream N] PATH...`: what each file of raw first-flight bytes is;
// a pcap or pcapng file stands for the client's first flight of its TCP stream N (as `linesman
// replay` reads it).
#include "capture/replay.hpp"
#include "tools/cli/commands.hpp"
#include "tools/cli/inspect.hpp"

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

// is_capture: the pcap (either byte order, micro- or nanosecond) or pcapng magic number.
bool is_capture(const std::vector<std::uint8_t>& b) {
  if (b.size() < 4) {
    return false;
  }
  const std::uint32_t m = static_cast<std::uint32_t>(b[0]) << 24 |
                          static_cast<std::uint32_t>(b[1]) << 16 |
                          static_cast<std::uint32_t>(b[2]) << 8 | b[3];
  return m == 0xa1b2c3d4U || m == 0xd4c3b2a1U || m == 0xa1b23c4dU || m == 0x4d3cb2a1U ||
         m == 0x0a0d0d0aU;
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Read files of raw first-flight bytes and print what they are (ClientHello "
      "fields, JA3/JA4, or the plaintext protocol)");
  static std::vector<std::string> paths;
  static bool json = false;
  static std::size_t stream = 0;
  cmd->add_option("paths", paths, "files of raw first-flight bytes, or pcap/pcapng captures")
      ->required();
  cmd->add_flag("--json", json, "one JSON object per line");
  cmd->add_option("--stream", stream, "TCP stream of a capture to read (tshark's tcp.stream)");
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
      std::string format;
      if (is_capture(bytes)) {
        capture::replay_input in;
        if (!capture::load_replay_input(path, stream, in, error)) {
          std::cerr << "linesman inspect: " << error << "\n";
          ++failures;
          continue;
        }
        bytes = std::move(in.bytes);
        format = in.format;
      }
      nlohmann::ordered_json line = inspect_json(path, bytes);
      if (!format.empty()) {
        // Where the bytes came from: the client's first flight of one TCP stream.
        line["capture"] = {{"format", format}, {"stream", stream}};
      }
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
