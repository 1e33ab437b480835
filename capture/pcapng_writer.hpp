// pcapng_writer: per-connection capture files that Wireshark and tshark open as an ordinary TCP
// conversation.
//
// linesman sees a connection as two byte streams, not as packets, so the recorder synthesizes the
// packets: Ethernet + IPv4/IPv6 + TCP headers around the bytes as linesman read them, with real
// timestamps, a three-way handshake, consistent sequence and acknowledgement numbers in both
// directions, valid IP and TCP checksums, and FIN/RST when they happen. Dissectors then
// reassemble the stream and decode TLS exactly as on a real capture.
//
// File layout (pcapng, draft-ietf-opsawg-pcapng, host byte order as announced by the SHB magic):
//
//   +-----+-----+-----+-----+-----+
//   | SHB | IDB | EPB | EPB | ... |     SHB: section header, IDB: one interface, linktype 1
//   +-----+-----+-----+-----+-----+     (Ethernet), microsecond timestamps; EPB: one packet
//
// Each EPB carries  [Ethernet 14][IPv4 20 | IPv6 40][TCP 20 (+12 options on SYNs)][payload].
//
// Data path rules: no exceptions, no allocation per packet (one reusable buffer), bytes past the
// per-direction bound cost nothing but a counter (the caller checks wants_more() before copying).
#pragma once

#include "tls/protocol.hpp"

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <asio/ip/tcp.hpp>

namespace linesman::capture {

using clock = std::chrono::system_clock;
using direction = tls::direction;

// kUnlimited: a byte bound that never stops capture (`--capture-bytes all`).
inline constexpr std::uint64_t kUnlimited = ~std::uint64_t{0};
// kDefaultBytesPerDirection: the first flights, with room for a TLS 1.2 certificate chain.
inline constexpr std::uint64_t kDefaultBytesPerDirection = 64 * 1024;
// kMaxSegmentPayload: payload bytes per synthesized segment (a 16 KiB TLS record plus header
// fits in two); far below the IPv4 limit of 65515, and what tshark reassembles happily.
inline constexpr std::size_t kMaxSegmentPayload = 16384;

class capture_dir;
namespace detail {
struct dir_state;
}

// recorder: one connection's capture file. Created by recorder::open or capture_dir::start;
// owned by the connection (unique_ptr), which calls data/fin/rst as bytes move and close() (or
// the destructor) at the end. Never throws. After the first write error the recorder stops
// (failed() is true, error() says why) and every later call is a no-op; the file keeps what was
// written so far.
class recorder {
 public:
  // open: create `path` (O_CREAT|O_EXCL, mode 0600: captures may hold credentials) and write the
  // SHB, the IDB and the SYN, SYN-ACK, ACK handshake stamped `syn_time`. `client` and `server`
  // are the addresses the synthesized packets carry (both IPv4 or both IPv6; a v4-mapped IPv6
  // address is written as IPv4). `bytes_per_direction` bounds the payload kept in each direction
  // (kUnlimited for all). Returns nullptr and sets `ec` when the file cannot be created or the
  // first write fails (a partial file is removed).
  static std::unique_ptr<recorder> open(const std::filesystem::path& path,
                                        const asio::ip::tcp::endpoint& client,
                                        const asio::ip::tcp::endpoint& server,
                                        std::uint64_t bytes_per_direction, std::error_code& ec,
                                        clock::time_point syn_time = clock::now());
  ~recorder();
  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  // wants_more: whether data() in direction `d` would still write anything. Cheap; call it
  // before copying bytes for the recorder so that bytes past the bound cost nothing.
  [[nodiscard]] bool wants_more(direction d) const;

  // data: `bytes` were read from the sender of direction `d` at `ts`. Written as segments of at
  // most kMaxSegmentPayload; the part past the bound is only counted (sequence numbers advance,
  // so tshark shows the gap honestly if a FIN follows).
  void data(direction d, std::span<const std::uint8_t> bytes, clock::time_point ts = clock::now());
  // skipped: `len` bytes moved in direction `d` that the caller did not hand to data() (e.g.
  // spliced past the bound). Keeps later sequence numbers honest.
  void skipped(direction d, std::uint64_t len);
  // fin / rst: the sender of direction `d` closed its side (FIN) or reset the connection (RST).
  // Each is written at most once per direction; nothing is written in `d` after its FIN or RST.
  void fin(direction d, clock::time_point ts = clock::now());
  void rst(direction d, clock::time_point ts = clock::now());
  // close: flush and close the file. Idempotent; the destructor calls it.
  void close();

  [[nodiscard]] bool failed() const { return static_cast<bool>(error_); }
  [[nodiscard]] std::error_code error() const { return error_; }
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }
  // file_bytes: bytes written to the file so far.
  [[nodiscard]] std::uint64_t file_bytes() const { return file_bytes_; }
  // captured_bytes / seen_bytes: payload written / payload reported (captured + past the bound).
  [[nodiscard]] std::uint64_t captured_bytes(direction d) const { return side(d).captured; }
  [[nodiscard]] std::uint64_t seen_bytes(direction d) const { return side(d).seen; }

 private:
  friend class capture_dir;
  struct side_state {
    std::array<std::uint8_t, 6> mac{};
    std::uint32_t isn = 0;
    std::uint64_t seen = 0;      // payload bytes reported (sequence numbers follow this)
    std::uint64_t captured = 0;  // payload bytes written
    std::uint16_t ip_id = 0;
    bool closed = false;  // FIN or RST sent: nothing more in this direction
    bool fin_sent = false;
  };

  recorder() = default;
  [[nodiscard]] side_state& side(direction d) {
    return sides_[d == direction::client_to_server ? 0 : 1];
  }
  [[nodiscard]] const side_state& side(direction d) const {
    return sides_[d == direction::client_to_server ? 0 : 1];
  }
  void write_headers(clock::time_point syn_time);
  // packet: write one synthesized segment sent by the sender of `d`.
  void packet(direction d, std::uint8_t flags, std::uint32_t seq, std::uint32_t ack,
              std::span<const std::uint8_t> payload, clock::time_point ts, bool syn_options);
  void write_all(std::span<const std::uint8_t> bytes);
  void fail(std::error_code ec);
  [[nodiscard]] std::uint32_t next_seq(direction d) const;

  std::filesystem::path path_;
  int fd_ = -1;
  bool v6_ = false;
  std::array<std::uint8_t, 16> addr_[2]{};  // [0] client, [1] server (4 bytes used for IPv4)
  std::uint16_t port_[2]{};
  side_state sides_[2];
  std::uint64_t limit_ = kDefaultBytesPerDirection;
  std::uint64_t file_bytes_ = 0;
  std::error_code error_;
  std::vector<std::uint8_t> buf_;           // one packet block; reused, so no allocation per packet
  std::shared_ptr<detail::dir_state> dir_;  // set when made by a capture_dir (accounting)
  std::uint64_t dir_serial_ = 0;            // this file's entry in dir_->files
  bool dir_stopped_ = false;                // the directory's budget ran out for this file
};

// capture_dir: the `--capture DIR` manager. Names files `<conn-id>.pcapng` and lists each in the
// directory's manifest (`.linesman-captures`), keeps the total size of the directory's *.pcapng
// files under a bound (oldest closed files removed first; files found at startup count too), and
// only ever removes files it wrote: a file not in the manifest or not named as linesman names
// files (a tcpdump capture) counts against the budget but is never removed (one warning when such
// files keep the budget out of reach). On ENOSPC or any other write error stops capturing for good:
// one message through `on_stop`, stopped() turns true, start() returns nullptr from then on.
// Forwarding is never affected. Thread-safe: connections on several threads may share one.
// Recorders it made may outlive it (they share its bookkeeping).
class capture_dir {
 public:
  struct options {
    std::filesystem::path dir;
    std::uint64_t bytes_per_direction = kDefaultBytesPerDirection;  // kUnlimited for `all`
    std::uint64_t max_total_bytes = std::uint64_t{1} << 30;         // the directory's budget
    // on_stop: called once, with a message naming the directory and the error, when capture
    // stops. Default: one line on stderr.
    std::function<void(const std::string&)> on_stop;
    // on_warning: called once when files linesman did not write take up the budget. Default:
    // one line on stderr.
    std::function<void(const std::string&)> on_warning;
  };

  // open: create the directory if missing (mode 0700) and account for the captures already
  // there. Returns nullptr and sets `ec` when the directory cannot be created or read.
  static std::unique_ptr<capture_dir> open(options opts, std::error_code& ec);
  ~capture_dir();

  // start: a recorder for connection `conn_id` (file `<conn_id>.pcapng`; characters outside
  // [A-Za-z0-9._-] become '_'), or nullptr when capture has stopped or the file cannot be made
  // (the latter stops capture too). `out_file_name` gets the file's name (the record's
  // `capture`).
  std::unique_ptr<recorder> start(std::string_view conn_id, const asio::ip::tcp::endpoint& client,
                                  const asio::ip::tcp::endpoint& server, std::string& out_file_name,
                                  clock::time_point syn_time = clock::now());

  [[nodiscard]] bool stopped() const;
  // stop_message: why capture stopped; empty while it runs.
  [[nodiscard]] std::string stop_message() const;
  // total_bytes: the directory's accounted size (existing captures plus bytes written).
  [[nodiscard]] std::uint64_t total_bytes() const;
  [[nodiscard]] const std::filesystem::path& dir() const { return dir_; }

 private:
  capture_dir() = default;
  std::filesystem::path dir_;
  std::uint64_t bytes_per_direction_ = kDefaultBytesPerDirection;
  std::shared_ptr<detail::dir_state> state_;
};

// safe_file_stem: `id` with every character outside [A-Za-z0-9._-] replaced by '_' (and a
// leading '.' too), never empty. Exposed for tests and for the proxy's `capture` field.
std::string safe_file_stem(std::string_view id);

}  // namespace linesman::capture
