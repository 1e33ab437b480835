// pcap_reader_fuzz: libFuzzer target for capture::read_tcp_stream, the parser of untrusted
// capture files (`linesman replay PATH`). Links linesman_capture_parsers, the capture target
// without Asio, which the tls-only fuzz build (LINESMAN_TLS_ONLY) also builds.
//
// Besides "no crash, no sanitizer finding" it checks what replay relies on: segments are ordered,
// contiguous and add up to the reassembled bytes, and the per-direction bound holds.
// Seeds: tests/data/corpus/pcap (and whatever the smoke run is given).
#include "capture/pcap_reader.hpp"

#include <cstdlib>

namespace {

void check_side(const linesman::capture::stream_side& s, std::uint64_t bound) {
  std::uint64_t at = 0;
  for (const auto& seg : s.segments) {
    if (seg.offset != at || seg.len == 0) {
      std::abort();
    }
    at += seg.len;
  }
  if (at != s.bytes.size() || s.bytes.size() > bound) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  linesman::capture::read_options opts;
  opts.max_stream_bytes = 1 << 20;
  opts.max_packets = 100'000;
  std::span<const std::uint8_t> in(data, size);
  for (std::size_t index : {std::size_t{0}, std::size_t{1}}) {
    opts.stream_index = index;
    linesman::capture::tcp_stream s;
    std::string error;
    if (linesman::capture::read_tcp_stream(in, opts, s, error)) {
      check_side(s.client, opts.max_stream_bytes);
      check_side(s.server, opts.max_stream_bytes);
      if (!error.empty()) {
        std::abort();
      }
    } else if (error.empty()) {
      std::abort();  // every failure says why
    }
  }
  return 0;
}
