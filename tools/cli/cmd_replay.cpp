// `linesman replay PATH --target HOST:PORT`: send a captured client first flight again and print
// how the target answered, in the access log's terms. Exit 0 when the target answered well (a
// ServerHello or a good reply), 1 for a failure verdict, 2 for bad input.
#include "capture/replay.hpp"
#include "proxy/config.hpp"
#include "tools/cli/commands.hpp"

#include <charconv>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::tools {

namespace {

struct replay_args {
  std::string path;
  std::string target;
  bool json = false;
  std::string chunks = "captured";
  bool timing = false;
  std::optional<std::string> sni;
  bool handshake = false;
  std::string timeout = "5s";
  std::size_t stream = 0;
  std::string capture;
  std::string split_segments;
  std::string split_records;
  std::string gap;
};

// count_in: a decimal count from 1 to `max`, or an exception naming `flag`.
std::size_t count_in(std::string_view text, const std::string& flag, std::size_t max) {
  std::size_t n = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (text.empty() || ec != std::errc() || ptr != text.data() + text.size() || n == 0 || n > max) {
    throw std::runtime_error(flag + ": '" + std::string(text) + "' is not a number from 1 to " +
                             std::to_string(max));
  }
  return n;
}

// parse_split: --split-segments N, --split-records N[,first=B] and --gap DUR into `o`.
void parse_split(const replay_args& a, capture::replay_options& o) {
  if (!a.split_segments.empty()) {
    if (a.chunks != "captured") {
      throw std::runtime_error("--split-segments: not with --chunks (both choose the writes)");
    }
    o.split_segments = static_cast<unsigned>(count_in(a.split_segments, "--split-segments", 64));
  }
  if (!a.split_records.empty()) {
    std::string_view v = a.split_records;
    const auto comma = v.find(',');
    o.split_records = static_cast<unsigned>(count_in(v.substr(0, comma), "--split-records", 64));
    if (comma != std::string_view::npos) {
      const auto rest = v.substr(comma + 1);
      if (!rest.starts_with("first=")) {
        throw std::runtime_error("--split-records: '" + a.split_records +
                                 "': after N only first=B (bytes in the first record)");
      }
      o.split_first = count_in(rest.substr(6), "--split-records first", 1 << 24);
    }
  }
  if (!a.gap.empty()) {
    o.gap = proxy::parse_duration(a.gap, "--gap");
    if (o.gap > std::chrono::minutes(1)) {
      throw std::runtime_error("--gap: at most 1m, got '" + a.gap + "'");
    }
  }
}

// parse_chunks: "captured", "whole", "1", or "N,N,..." (the last size repeats).
void parse_chunks(const std::string& text, capture::replay_options& o) {
  if (text == "captured") {
    o.chunks = capture::chunking::captured;
    return;
  }
  if (text == "whole") {
    o.chunks = capture::chunking::whole;
    return;
  }
  o.chunks = capture::chunking::sizes;
  std::string_view rest = text;
  while (!rest.empty()) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    std::size_t n = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), n);
    if (ec != std::errc() || ptr != item.data() + item.size() || n == 0 || n > 1'000'000) {
      throw std::runtime_error("--chunks: '" + text +
                               "' is not captured, whole, or a list of sizes like 1 or 100,417");
    }
    o.chunk_sizes.push_back(n);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    if (comma != std::string_view::npos && rest.empty()) {
      throw std::runtime_error("--chunks: trailing comma in '" + text + "'");
    }
  }
  if (o.chunk_sizes.empty()) {
    throw std::runtime_error("--chunks: empty");
  }
}

}  // namespace

void add_replay_command(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "replay", "Send a captured client first flight (raw .bin, pcap or pcapng) to a target");
  static replay_args args;
  cmd->add_option("path", args.path, "raw first-flight bytes, or a pcap/pcapng capture");
  cmd->add_option("--target", args.target, "HOST:PORT to send it to ([v6]:PORT for IPv6)");
  cmd->add_flag("--json", args.json, "print one JSON object");
  cmd->add_option("--chunks", args.chunks,
                  "write sizes: captured (default), whole, 1 (byte by byte) or N,N,...");
  cmd->add_flag("--timing", args.timing, "reproduce the captured gaps between segments");
  cmd->add_option("--sni", args.sni, "rewrite the ClientHello's SNI (empty removes it)");
  cmd->add_flag("--handshake", args.handshake,
                "also complete a TLS handshake with OpenSSL and print the certificate chain");
  cmd->add_option("--timeout", args.timeout, "connect and first-reply timeout (default 5s)");
  cmd->add_option("--stream", args.stream,
                  "TCP stream of the capture to use (tshark's tcp.stream)");
  cmd->add_option("--capture", args.capture, "write the replayed conversation to this pcapng file");
  cmd->add_option("--split-segments", args.split_segments,
                  "N: send the flight in N writes as even as can be (TCP_NODELAY)");
  cmd->add_option("--split-records", args.split_records,
                  "N[,first=B]: re-frame the ClientHello into N TLS records, B handshake bytes "
                  "in the first (the bytes on the wire change)");
  cmd->add_option("--gap", args.gap, "DUR: pause before each write after the first");
  cmd->callback([] {
    if (args.path.empty()) {
      throw std::runtime_error("replay: PATH is required (a .bin, pcap or pcapng file)");
    }
    if (args.target.empty()) {
      throw std::runtime_error("replay: --target HOST:PORT is required");
    }
    capture::replay_options opts;
    auto hp = proxy::parse_host_port(args.target, "--target", false);
    opts.host = hp.host;
    opts.port = hp.port;
    parse_chunks(args.chunks, opts);
    parse_split(args, opts);
    opts.timing = args.timing;
    opts.sni = args.sni;
    opts.handshake = args.handshake;
    auto timeout = proxy::parse_duration(args.timeout, "--timeout");
    if (timeout.count() <= 0 || timeout > std::chrono::minutes(10)) {
      throw std::runtime_error("--timeout: between 1ms and 10m, got '" + args.timeout + "'");
    }
    opts.connect_timeout = timeout;
    opts.reply_timeout = timeout;
    if (!args.capture.empty()) {
      opts.capture_path = args.capture;
    }

    capture::replay_input in;
    std::string error;
    if (!capture::load_replay_input(args.path, args.stream, in, error)) {
      throw std::runtime_error(error);
    }
    capture::verdict v;
    if (!capture::replay(in, opts, v, error)) {
      throw std::runtime_error(error);
    }
    if (args.json) {
      nlohmann::json j = v;
      j["input"] = {{"path", in.path},
                    {"format", in.format},
                    {"bytes", in.bytes.size()},
                    {"segments", in.segments.size()}};
      std::cout << j.dump() << "\n";
    } else {
      std::cout << "input     " << in.path << " (" << in.format << ", " << in.bytes.size()
                << " bytes in " << in.segments.size() << " segments)\n";
      std::cout << capture::to_text(v);
    }
    std::cout.flush();
    bool ok = v.ok && (!v.handshake || v.handshake->ok);
    exit_code() = ok ? 0 : 1;
  });
}

}  // namespace linesman::tools
