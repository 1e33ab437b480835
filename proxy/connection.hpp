// connection: one accepted client connection, from accept to its single access-log record.
//
// `accept -> inspect -> route -> connect -> first reply -> stream -> close -> one record`
//
// One object per connection owns both sockets by value, the first-flight buffers and the record;
// the phases below borrow them. Until the stream phase, the coroutine run() drives it (and its
// caller owns it); timeouts are a steady_timer watchdog (watch) raced against each phase with
// awaitable operator ||. The stream phase is callback driven (first-byte waits, splice_relay, a
// timer handler as watchdog) and owns the connection, which deletes itself at the end: an idle
// connection keeps no coroutine frame, only the object and its pending reactor operations.
// Data-plane errors are error codes, never exceptions.
#pragma once

#include "capture/pcapng_writer.hpp"
#include "proxy/config.hpp"
#include "proxy/inspect.hpp"
#include "proxy/live.hpp"
#include "proxy/log_sink.hpp"
#include "proxy/record.hpp"
#include "proxy/route.hpp"
#include "proxy/splice_pump.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <asio.hpp>

namespace linesman::proxy {

class connection;

// listener_runtime: one listener's validated config, route table and log sink; shared read-only
// by every worker for the process lifetime (the sink is thread-safe).
struct listener_runtime {
  listener_config cfg;
  route_table routes;
  log_sink* sink = nullptr;
  capture::capture_dir* capture = nullptr;  // null when capture is off; owned by the server
  listener_stats* stats = nullptr;          // metrics (proxy/live.hpp); may be null in tests
};

// worker_state: per event loop (one thread); nothing in it is shared between workers.
struct worker_state {
  bool no_splice = false;
  pipe_pool pipes;
  std::list<connection*> live;  // for the drain: every connection alive on this worker
  std::atomic<std::size_t>* active = nullptr;  // process-wide count (max-connections)
  live_registry* registry = nullptr;           // the admin's view of this worker; may be null
};

class connection {
 public:
  // connection: takes ownership of the accepted socket; registers itself with `w` until destroyed.
  connection(asio::ip::tcp::socket client, const listener_runtime& l, worker_state& w,
             std::string id);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // run: accept -> inspect -> route -> connect, then starts the stream phase. Returns false when
  // the connection ended before streaming (record handed to the sink, sockets closed): the
  // caller still owns it. Returns true when the stream phase took over: the caller must release
  // its ownership, and the connection deletes itself once the stream ends (its record handed to
  // the sink, its sockets closed). The caller must have allocated it with new (make_unique).
  // Never throws.
  asio::awaitable<bool> run();

  // request_shutdown: the drain timeout passed; end now and record proxy_shutdown.
  void request_shutdown();
  [[nodiscard]] duration drain_timeout() const { return l_.cfg.limits.drain; }

  // publish_open_record: hands a copy of the record so far to the sink as an interim record
  // ("state": "open"; stop = the phase it waits in and what its timer would record). Runs on the
  // connection's own worker thread. No-op before the record was started.
  void publish_open_record();

 private:
  enum class dir : std::uint8_t { c2u, u2c };
  enum class watch_fire : std::uint8_t { deadline, shutdown };
  enum class peek_end : std::uint8_t { decided, eof, reset, error, cancelled };
  enum class connect_kind : std::uint8_t { ok, failed, resolve_failed, cancelled };

  struct flight {
    std::unique_ptr<std::uint8_t[]> buf;  // allocated on first readability, freed after inspection
    std::size_t len = 0;
    std::size_t forwarded = 0;
    int reads = 0;
    bool done = false;
  };

  struct connect_result {
    connect_kind kind = connect_kind::cancelled;
    std::error_code ec;
    asio::ip::tcp::endpoint peer;  // the address connected to (kind == ok)
  };

  asio::awaitable<watch_fire> watch(std::chrono::steady_clock::time_point deadline);
  // on_stream_watch: the stream phase's watchdog, a handler of watch_timer_ (idle timeout,
  // shutdown); once both relays are done it ends the stream phase.
  void on_stream_watch();
  // end_stream_phase: classify, close, hand the record to the sink, delete this.
  void end_stream_phase();
  void relay_done();
  asio::awaitable<peek_end> read_client_flight(bool park);
  // connect_upstream: ok = upstream_ connected, non-blocking, with TCP_NODELAY (tune()).
  asio::awaitable<connect_result> connect_upstream(const host_port& target);
  // read_proxy_header: reads exactly the PROXY header (never a byte past it) into pp_in_.
  asio::awaitable<peek_end> read_proxy_header();
  // accept_proxy_header: the listener's proxy_protocol_in step; false when the connection was
  // ended (record finished).
  asio::awaitable<bool> accept_proxy_header();
  // send_proxy_header: the received header (forward) or a generated one (proxy_protocol_out),
  // written upstream before any client byte.
  asio::awaitable<void> send_proxy_header();
  void end_at_inspect(stop_reason r, const char* pp_error);
  // The stream phase of one direction: start_relay (a bare wait until its first byte), then
  // inspect_relay (forward the first-flight bytes held so far, inspect the rest of the flight;
  // nullopt = this direction is over, else how its source ended or `cancelled` to stream on),
  // then start_stream: splice_ (callback driven) or copy_relay (capture bound, --no-splice,
  // fallback). Each path ends in relay_done() exactly once.
  void start_relay(dir d);
  void spawn_inspect(dir d);
  asio::awaitable<std::optional<pump_result>> inspect_relay(dir d);
  void start_stream(dir d);
  void start_splice(dir d);
  void on_splice_end(dir d, const pump_result& r);
  void spawn_copy(dir d, bool fallback);
  // copy_relay: nullopt = the capture got its bytes, splice the rest.
  asio::awaitable<std::optional<pump_result>> copy_relay(dir d, bool fallback);
  void end_stream(dir d, const pump_result& r);
  pump_counters counters(dir d);
  // capture_copy: the stream phase's read/write path while the recorder still wants bytes in
  // `d`; returns nullopt once the bound is reached (the caller splices the rest).
  asio::awaitable<std::optional<pump_result>> capture_copy(dir d, pump_counters c);
  void cap_data(dir d, const std::uint8_t* p, std::size_t n);
  void cap_end(dir d, bool reset);

  void start_record();
  [[nodiscard]] bool client_spoke_tls() const;
  void stop_relays();
  void on_client_bytes(std::size_t n);
  // inspect_client: re-inspect the client's first flight in `f` (all bytes so far; `final` when
  // no more will come), stamp timing.hello_complete when the hello just completed, and mark `f`
  // done when it is final or the verdict no longer needs bytes.
  void inspect_client(flight& f, bool final);
  void on_upstream_bytes(std::size_t n);
  void note_end(dir d, const pump_result& r);
  void set_stop(stop_phase p, stop_reason r, stop_by by, int err = 0);
  void classify_after_relay(std::optional<watch_fire> fired);
  void close_sockets();
  void finish();
  std::int64_t since_accept_us() const;
  void enter_phase(live_phase p);
  void account_end();

  asio::ip::tcp::socket client_;
  asio::ip::tcp::socket upstream_;
  const listener_runtime& l_;
  worker_state& w_;
  std::list<connection*>::iterator reg_;
  asio::steady_timer watch_timer_;

  record rec_;
  std::chrono::steady_clock::time_point accepted_;
  std::chrono::steady_clock::time_point last_activity_;

  std::vector<std::uint8_t> pp_in_;  // the received PROXY header (only its bytes)
  bool pp_parsed_ = false;
  int pp_out_ = 0;  // the PROXY version to write upstream: the route's, else the listener's
  flight cflight_;
  flight uflight_;
  client_check ccheck_;
  reply_verdict uverdict_ = reply_verdict::need_more;

  side_end client_end_ = side_end::none;
  side_end upstream_end_ = side_end::never;
  std::optional<stop_by> first_;
  std::optional<watch_fire> fired_;  // what ended the stream phase, if the watchdog did
  int err_ = 0;
  bool shutdown_ = false;
  bool abort_ = false;
  std::unique_ptr<capture::recorder> cap_;  // null when capture is off
  bool rst_client_ = false;
  bool rst_upstream_ = false;
  bool upstream_open_ = false;
  int relays_left_ = 0;
  bool started_ = false;
  live_conn live_;
  std::array<splice_relay, 2> splice_;  // by dir
  // by dir: bytes read when the stage the capture does not see (splice, copy) began; unset while
  // the capture records every byte (then nothing is skipped)
  std::array<std::optional<std::uint64_t>, 2> uncaptured_from_{};
  std::int64_t connect_start_us_ = -1;
};

}  // namespace linesman::proxy
