// replay: send a captured client first flight to a target again and say how the target answered,
// in the access log's terms (`upstream_first`, `server_tls`, `stop`), so a failure seen once can
// be reproduced against Traefik after a config change, or in tests.
//
// The engine is synchronous from the caller's view (a private io_context runs each step with a
// deadline); every wait is bounded in time and every read in bytes. Errors on the network are
// part of the verdict, never exceptions.
#pragma once

#include "capture/pcap_reader.hpp"

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace linesman::capture {

// replay_input: the client's first flight and how it was segmented.
struct replay_input {
  std::string path;
  std::string format;               // "raw", "pcap" or "pcapng"
  std::vector<std::uint8_t> bytes;  // the client's first flight
  std::vector<segment> segments;    // as captured; one segment for a raw file
  std::string captured_client;      // "ip:port" from a capture; empty for raw
  std::string captured_server;
};

// load_replay_input: read PATH (raw first-flight bytes, pcap or pcapng; told apart by the magic
// number). From a capture, TCP stream `stream_index` is used and the client's first flight is
// its bytes up to the end of the ClientHello (a complete TLS hello, after a PostgreSQL
// SSLRequest if any), or, for other protocols, the bytes it sent before the server's reply
// changed. Returns false with a message naming the file on unreadable, empty or oversized input.
bool load_replay_input(const std::filesystem::path& path, std::size_t stream_index,
                       replay_input& out, std::string& error);

enum class chunking : std::uint8_t { captured, whole, sizes };

struct replay_options {
  std::string host;  // name or address of the target
  std::uint16_t port = 0;
  chunking chunks = chunking::captured;
  // chunk_sizes: for chunking::sizes, the write sizes in order; the last one repeats until the
  // flight is sent ("1" = one byte at a time).
  std::vector<std::size_t> chunk_sizes;
  bool timing = false;                      // reproduce the captured gaps between segments
  std::chrono::milliseconds max_gap{2000};  // each reproduced gap is capped at this
  std::optional<std::string> sni;           // rewrite the ClientHello's SNI ("" removes it)
  // split_records: re-frame the ClientHello into this many TLS records (0: as captured), the
  // first carrying split_first handshake bytes (0: even); see capture/hello_rewrite.hpp. The
  // flight then goes in one write unless split_segments or chunk sizes say otherwise.
  unsigned split_records = 0;
  std::size_t split_first = 0;
  unsigned split_segments = 0;       // the flight in this many writes, as even as can be
  std::chrono::milliseconds gap{0};  // a pause before each write after the first
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds reply_timeout{5000};  // for the first reply byte
  std::chrono::milliseconds settle{300};  // after reply bytes: how long quiet means "that's all"
  std::size_t max_reply_bytes = 65536 + 5;
  bool handshake = false;  // also do a real TLS handshake with OpenSSL
  // capture_path: if set, record the replayed conversation there as pcapng.
  std::optional<std::filesystem::path> capture_path;
};

// cert_info: one certificate of the chain the target presented.
struct cert_info {
  std::string subject;
  std::string issuer;
  std::vector<std::string> san;
  std::string not_before;  // RFC 3339 UTC
  std::string not_after;
};

// handshake_result: the OpenSSL handshake of --handshake.
struct handshake_result {
  bool ok = false;
  std::string error;  // why the handshake failed (OpenSSL's reason, or a timeout)
  std::string sni;    // the name sent (empty: none)
  std::vector<std::string> alpn_offered;
  std::string version;               // "1.3"
  std::string cipher;                // IANA name
  std::string alpn;                  // selected, empty when none
  std::vector<cert_info> chain;      // leaf first
  bool verified = false;             // chain verifies against the system trust store
  std::string verify_error;          // OpenSSL's text when not verified
  std::optional<bool> name_matches;  // leaf valid for `sni` (or the target IP); unset if no name
  std::string checked_name;
};

struct alert_info {
  std::string level;
  std::string description;
  int code = 0;
};

// verdict: what happened, shaped like the access log's fields of the same names.
struct verdict {
  std::string target;  // host:port as given
  std::string ip;      // address connected to (empty when connect failed before one was chosen)
  std::uint16_t port = 0;
  std::uint64_t bytes_sent = 0;
  int writes = 0;
  std::string client_protocol;          // what the flight sent is (tls::protocol_name)
  std::optional<std::string> sni_sent;  // the SNI in the flight sent (after --sni), if TLS

  // upstream_first: schema $defs/first_flight.
  std::string upstream_protocol = "none";
  std::string upstream_summary;
  std::uint64_t upstream_bytes = 0;

  // server_tls: present when the reply showed a ServerHello or an alert.
  bool has_server_tls = false;
  std::string server_version;
  std::string server_cipher;
  std::optional<alert_info> server_alert;
  std::optional<cert_info> server_certificate;  // TLS <= 1.2 leaf, seen in clear

  // stop: phase, reason and by use the schema's strings (proxy/stop.hpp names).
  std::string phase;
  std::string reason;
  std::string by;
  std::string errno_name;  // e.g. "ECONNREFUSED"; empty when none
  std::string close;       // how the target's side ended: fin, rst, timeout, open, never
  std::optional<double> connect_ms;
  std::optional<double> first_byte_ms;  // since the first byte was sent
  bool ok = false;                      // the target answered well (ServerHello, good reply)

  std::optional<handshake_result> handshake;
  std::string capture_file;  // --capture: where the conversation was written
  std::string capture_error;
};

// replay: connect to opts.host:opts.port, send `in` as asked, read the answer, decide. Never
// throws on network or peer behaviour; bad options (an --sni on a non-TLS flight) are reported
// through `error` with a false return, before anything is sent.
bool replay(const replay_input& in, const replay_options& opts, verdict& out, std::string& error);

// plan_writes: the write sizes for `in` under `opts` (and a required wait for peer bytes before
// each write). Exposed for tests. Writes never cross a point where the captured client waited
// for the server.
struct planned_write {
  std::size_t len = 0;
  std::uint64_t wait_peer_bytes = 0;  // reply bytes to have before sending this write
  std::chrono::nanoseconds gap{0};    // --timing: sleep before this write
};
std::vector<planned_write> plan_writes(const replay_input& in, std::size_t total_len,
                                       const replay_options& opts);

void to_json(nlohmann::json& j, const verdict& v);
void to_json(nlohmann::json& j, const handshake_result& v);
// to_text: a few readable lines for a terminal.
std::string to_text(const verdict& v);

}  // namespace linesman::capture
