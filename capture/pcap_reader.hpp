// pcap_reader: read one TCP conversation out of a pcap or pcapng file and reassemble both
// directions into byte sequences, keeping each segment's size and timestamp (so a replay can
// resend the client's bytes with the same segmentation and gaps).
//
// Formats: classic pcap (both byte orders, microsecond and nanosecond magic) and pcapng (SHB,
// IDB, EPB, SPB, obsolete PB; several sections and interfaces; if_tsresol and if_tsoffset).
// Link types: Ethernet (1, with 802.1Q/802.1ad tags), Linux cooked v1 (113) and v2 (276), raw IP
// (101, and the BSD DLT 12/14), IPv4 (228), IPv6 (229), BSD loopback/null (0, host order) and
// OpenBSD loop (108, network order). IPv4 (no fragments) and IPv6 (skipping extension headers).
//
// The file is untrusted: every field is read through tls::byte_reader, sizes are bounded
// (read_options), and a truncated or garbage file gives a message that says where it broke.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

namespace linesman::capture {

// segment: one TCP segment's new bytes in a reassembled direction.
struct segment {
  std::uint64_t offset = 0;  // where its bytes start in the direction's byte sequence
  std::uint32_t len = 0;     // bytes it added (retransmitted parts not counted)
  std::int64_t ts_ns = 0;    // capture timestamp, nanoseconds since the Unix epoch
  // peer_bytes_before: bytes the other direction had delivered when this segment was captured
  // (timestamp order). A replay waits for that many reply bytes before sending it, which is how
  // a PostgreSQL SSLRequest waits for its 'S'.
  std::uint64_t peer_bytes_before = 0;
};

// stream_side: one direction of the conversation.
struct stream_side {
  std::string ip;  // text form, e.g. "127.0.0.1" or "::1"
  std::uint16_t port = 0;
  std::vector<std::uint8_t> bytes;  // in sequence order, retransmits removed
  std::vector<segment> segments;    // ordered by offset
  bool fin = false;                 // sent a FIN
  bool rst = false;                 // sent a RST
  bool gap = false;                 // bytes missing from the capture: `bytes` stops at the hole
  bool truncated = false;           // stopped at read_options::max_stream_bytes
};

// tcp_stream: a reassembled conversation. `client` sent the SYN (or, without a SYN in the
// capture, the first packet).
struct tcp_stream {
  std::size_t index = 0;    // which conversation (tshark's tcp.stream numbering)
  std::size_t streams = 0;  // conversations found in the file
  bool saw_syn = false;
  stream_side client;
  stream_side server;
  std::size_t packets = 0;  // TCP packets of this conversation
};

struct read_options {
  std::size_t stream_index = 0;                              // tshark's tcp.stream number
  std::uint64_t max_file_bytes = std::uint64_t{256} << 20;   // refuse larger files
  std::uint64_t max_stream_bytes = std::uint64_t{64} << 20;  // per direction
  std::size_t max_packets = 2'000'000;                       // refuse files with more packets
  // max_streams: conversations numbered; later ones are skipped (an index past it fails).
  std::size_t max_streams = 100'000;
};

// read_tcp_stream: parse capture `data` and reassemble conversation `opts.stream_index`.
// Returns false with a one-line `error` (no file name; the caller adds it) when the data is not
// a capture, is cut inside a header, names an unsupported link type for every packet, or holds
// no such conversation. A packet cut short by the snap length is used as far as it goes (its
// missing tail becomes a gap). Allocates at most the reassembled bytes plus per-segment entries.
bool read_tcp_stream(std::span<const std::uint8_t> data, const read_options& opts, tcp_stream& out,
                     std::string& error);

// read_tcp_stream_file: read_tcp_stream on a file's content, bounded by opts.max_file_bytes.
// The error names the file.
bool read_tcp_stream_file(const std::filesystem::path& path, const read_options& opts,
                          tcp_stream& out, std::string& error);

// looks_like_capture: whether `head` starts with a pcap or pcapng magic number.
bool looks_like_capture(std::span<const std::uint8_t> head);

}  // namespace linesman::capture
