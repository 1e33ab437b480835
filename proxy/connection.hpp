// connection: one accepted client connection, from accept to its single access-log record.
//
// `accept -> first flight -> route -> connect -> first replies -> stream -> end -> one record`
//
// One object per connection owns both sockets (in `sides_`, indexed by direction), the
// first-flight buffers, its facts and its record; the phases below borrow them. Each phase is a
// short function in its own file that records what it observed into `facts_`:
//   proxy/connection.cpp            run(), the record's start and end
//   proxy/connection_flight.cpp     reading the client's first flight (first flight, route)
//   proxy/connection_connect.cpp    connect, and a failed connect reaching the client at once
//   proxy/connection_stream.cpp     first replies and stream (relays, watchdog)
//   proxy/proxy_protocol.cpp        the PROXY header in and out
//   proxy/transparent.cpp           the original destination (transparent interception)
// The stop is decided once, by classify(facts_) (proxy/facts.hpp), for the final record, the
// interim records and the live view alike.
//
// Until the stream phase, the coroutine run() drives the connection (and its caller owns it).
// The route and connect phases await one operation each, with plain handlers beside it (the
// phase's deadline, and the client while connecting) that cancel it (phase_watch); the rarer
// steps (PROXY header, a failed connect's last look at the client) race a steady_timer watchdog
// (watch) with awaitable operator ||, which spawns a coroutine per operand. The stream phase is
// callback driven (first-byte waits, splice_relay, a timer handler as watchdog) and owns the
// connection, which deletes itself at the end: an idle connection keeps no coroutine frame, only
// the object and its pending reactor operations. Data-plane errors are error codes, never
// exceptions.
#pragma once

#include "capture/pcapng_writer.hpp"
#include "proxy/access_record.hpp"
#include "proxy/config.hpp"
#include "proxy/facts.hpp"
#include "proxy/fault.hpp"
#include "proxy/flight_buffer.hpp"
#include "proxy/inspect.hpp"
#include "proxy/live.hpp"
#include "proxy/log_sink.hpp"
#include "proxy/loop_guard.hpp"
#include "proxy/route.hpp"
#include "proxy/splice_relay.hpp"

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
  fault_table* faults = nullptr;            // null when no fault can apply (proxy/fault.hpp)
  std::size_t index = 0;                    // position among the server's listeners
  asio::ip::tcp::endpoint bound;            // the address as bound (port 0 resolved)
  // key: what a reload matches listeners by (the listen address; with port 0 also the name): a
  // listener whose key stays keeps its bound sockets.
  std::string key;
  std::uint64_t generation = 1;  // the configuration it came from (the record's config_generation)
  // users: connections accepted on it and not yet destroyed (the accept loop adds one before it
  // starts a connection, ~connection takes it back): a runtime a reload replaced is freed only
  // once this is 0, so an open connection keeps the routes and timeouts it was accepted with.
  mutable std::atomic<std::size_t> users{0};
};

// worker_state: per event loop (one thread); nothing in it is shared between workers but the
// pointers to process-wide state.
struct worker_state {
  bool no_splice = false;
  pipe_pool pipes;
  std::list<connection*> live;  // for the drain: every connection alive on this worker
  std::atomic<std::size_t>* active = nullptr;  // process-wide count (max-connections)
  live_registry* registry = nullptr;           // the admin's view of this worker; may be null
  loop_guard* loops = nullptr;                 // process-wide; may be null in tests
};

class connection {
 public:
  // connection: takes ownership of the accepted socket (whose peer accept(2) reported as `peer`);
  // registers itself with `w` until destroyed.
  connection(tcp_socket client, const asio::ip::tcp::endpoint& peer, const listener_runtime& l,
             worker_state& w, std::string id);
  ~connection();
  connection(const connection&) = delete;
  connection& operator=(const connection&) = delete;

  // run: accept -> first flight -> route -> connect, then starts the stream phase. Returns false
  // when the connection ended before streaming (record handed to the sink, sockets closed): the
  // caller still owns it. Returns true when the stream phase took over: the caller must release
  // its ownership, and the connection deletes itself once the stream ends (its record handed to
  // the sink, its sockets closed). The caller must have allocated it with new (make_unique).
  // Never throws.
  asio::awaitable<bool> run();

  // request_shutdown: the drain timeout passed; end now and record proxy_shutdown.
  void request_shutdown();
  [[nodiscard]] duration drain_timeout() const { return listener_.cfg.limits.drain; }
  // runtime: the listener (configuration generation) this connection was accepted with.
  [[nodiscard]] const listener_runtime& runtime() const { return listener_; }

  // publish_open_record: hands a copy of the record so far to the sink as an interim record
  // ("state": "open"; stop = classify() of the facts so far, as if its timer fired now). Runs on
  // the connection's own worker thread. No-op before the record was started.
  void publish_open_record();

 private:
  // dir: a direction, named by its source side; sides_[d] is that direction's source.
  enum class dir : std::uint8_t { c2u = 0, u2c = 1 };
  // flight_end: how a first-flight read ended.
  enum class flight_end : std::uint8_t { decided, eof, reset, error, cancelled };

  // flight: one side's first flight as it passes through the bounded inspection buffer.
  struct flight {
    // buf: allocated on first readability, grown as bytes come, freed after inspection
    flight_buffer buf;
    std::size_t len = 0;
    std::size_t forwarded = 0;
    int reads = 0;
    bool done = false;
  };

  // side: one end of the connection: its socket, the first flight it sent, and the relay that
  // moves its bytes to the other side.
  struct side {
    explicit side(tcp_socket s) : socket(std::move(s)) {}
    tcp_socket socket;
    flight first;
    splice_relay relay;
    // bytes read when the stage the capture does not see (splice, copy) began; unset while the
    // capture records every byte (then nothing is skipped)
    std::optional<std::uint64_t> uncaptured_from;
    bool reset_on_close = false;  // pass a reset on: close with SO_LINGER {1, 0}
    bool readable = false;        // a wait just reported the socket readable: read now, don't wait
    bool drained = false;         // its last read returned less than asked: it was empty then
  };

  // ---- connection.cpp: the record, the end
  // start_record: stamps accept time and addresses; returns the client's and our address.
  std::pair<asio::ip::tcp::endpoint, asio::ip::tcp::endpoint> start_record();
  // end_if_loop: a client that is one of our own upstream connections and already passed this
  // listener is a forwarding loop: end it as route/no_route with the warning forwarding_loop.
  // True when it did.
  bool end_if_loop(const asio::ip::tcp::endpoint& peer, const asio::ip::tcp::endpoint& local);
  void end_before_stream(stop_phase p);
  void close_sockets();
  void finish();
  void sync_facts();
  [[nodiscard]] std::int64_t since_accept_us() const;
  void enter_phase(live_phase p);
  void publish_live_strings();
  void account_end();
  asio::awaitable<timer_fire> watch(std::chrono::steady_clock::time_point deadline);

  // phase_watch: what the handlers beside an awaited operation saw: the phase's deadline or a
  // shutdown fired, or the client left while we connected. Shared with those handlers because a
  // cancelled wait still completes, possibly after the connection is gone: a handler of an
  // earlier round (begin_watch .. end_watch) touches nothing but this.
  struct phase_watch {
    connection* conn = nullptr;
    asio::ip::tcp::resolver* resolver = nullptr;  // while connect_upstream resolves
    // while connect_upstream tries the resolved addresses: a cancel only moves asio's range
    // connect on to the next address, a close ends it
    bool close_upstream = false;
    std::uint32_t round = 0;
    timer_fire fired = timer_fire::none;
    bool client_left = false;
    [[nodiscard]] bool decided() const { return fired != timer_fire::none || client_left; }
  };
  void begin_watch();
  // watch_deadline: arms watch_timer_; when it fires (or request_shutdown cancels it) the handler
  // notes it and cancels the awaited operation.
  void watch_deadline(std::chrono::steady_clock::time_point deadline);
  void cancel_watched();
  // end_watch: the awaited operation returned: this round's remaining handlers do nothing. Returns
  // what they saw.
  phase_watch end_watch();
  [[nodiscard]] bool watch_decided() const { return watch_ && watch_->decided(); }
  side& src(dir d) { return sides_[static_cast<std::size_t>(d)]; }
  side& dst(dir d) { return sides_[1 - static_cast<std::size_t>(d)]; }
  side_end& end_of(dir d) { return d == dir::c2u ? facts_.client_end : facts_.upstream_end; }
  tcp_socket& client() { return sides_[0].socket; }
  tcp_socket& upstream() { return sides_[1].socket; }

  // ---- connection_flight.cpp: the client's first flight, and routing on it
  // read_now: one non-blocking read of what is already there; nullopt when nothing was.
  std::optional<flight_end> read_now();
  // recv_flight: one non-blocking recv(2) of d's source into the worker's scratch, for the rest of
  // its flight buffer, the bytes read appended to that buffer. nullopt: nothing was there
  // (EAGAIN); otherwise no error with n > 0, or how the source ended (eof, its errno).
  std::optional<std::error_code> recv_flight(dir d, std::size_t& n);
  // `look_first`: try a read before the first wait (false when the caller just did).
  asio::awaitable<flight_end> read_client_step(bool look_first = true);
  // `looked`: the caller has just read what was there; the first step starts with a wait.
  asio::awaitable<flight_end> read_client_flight(bool looked = false);
  // read_client_flight_watched: read_client_flight under the peek deadline (route_on_hello's
  // slow path, when the first read did not decide the flight).
  asio::awaitable<flight_end> read_client_flight_watched(bool looked);
  // watch_client_while_connecting: a handler chain beside the connect: takes the client's first
  // flight as it arrives, then only peeks for the client leaving (which cancels the connect).
  // `ready`: a wait just reported the client readable.
  void watch_client_while_connecting(bool ready);
  // look_at_client: its synchronous part: true when the client still needs a wait beside the
  // connect (arm_client_watch).
  bool look_at_client(bool ready);
  void arm_client_watch();
  asio::awaitable<flight_end> read_client_while_arriving();
  void take_client_bytes(std::size_t n);
  flight_end note_client_read_error(const std::error_code& ec);
  void inspect_client(bool final);
  [[nodiscard]] bool client_spoke_tls() const;
  // route_on_hello: SNI routes need the whole ClientHello before we know where to connect;
  // nullopt when the connection ended (record finished).
  asio::awaitable<std::optional<const route_config*>> route_on_hello(const host_port* fallback);

  // ---- connection_connect.cpp
  struct connect_result {
    connect_outcome outcome = connect_outcome::pending;
    std::error_code ec;
    asio::ip::tcp::endpoint peer;  // the address connected to (outcome == connected)
  };
  // connect_phase: false when the connection ended (record finished).
  asio::awaitable<bool> connect_phase(const host_port& target, const route_config* route);
  // connect_now: a numeric address, connected as far as it goes without waiting (on loopback
  // the handshake is over before connect(2) returns). outcome pending: in progress, finished by
  // connect_numeric; nullopt: the address needs the resolver (connect_upstream).
  // `send_first`: the client's held bytes may go out first (no PROXY header, no fault): their
  // send then tells the connect's fate (connect_by_sending).
  std::optional<connect_result> connect_now(const host_port& target, bool send_first);
  // connect_by_sending: the held client bytes sent on a socket whose connect(2) said
  // EINPROGRESS; nullopt when there are none.
  std::optional<connect_result> connect_by_sending(int fd, const asio::ip::tcp::endpoint& peer);
  // connect_error: SO_ERROR of a connect that finished: connected, or how it failed.
  static connect_result connect_error(int fd, const asio::ip::tcp::endpoint& peer);
  // connect_waiting: a connect that must wait, under the phase's deadline and the client watch.
  asio::awaitable<connect_result> connect_waiting(const host_port& target,
                                                  std::optional<connect_result> started,
                                                  bool watch_client);
  asio::awaitable<connect_result> connect_upstream(const host_port& target);
  asio::awaitable<connect_result> connect_numeric(const asio::ip::tcp::endpoint& peer);
  void note_local_endpoint(const asio::ip::tcp::endpoint& remote);
  void note_connect_result(const connect_result& r);
  asio::awaitable<void> end_failed_connect();
  void note_connected(const connect_result& r);
  void end_if_client_left();

  // ---- fault_apply.cpp: an injected fault (proxy/fault.hpp); only when fault_ is set
  void decide_fault(const route_config* route, bool held);
  // fault_relay: a faulted direction from its held bytes to its end, all through userspace (never
  // splice): the first flight inspected as inspect_next does, every write shaped by the fault.
  asio::awaitable<std::optional<relay_result>> fault_relay(dir d);
  struct fault_pace;
  asio::awaitable<bool> fault_forward(dir d, std::span<const std::uint8_t> bytes, fault_pace& pace);
  // fault_step: one read of d's source, forwarded shaped. `more`: read on; `source_ended`: the
  // read ended the source, `res` says how; `over`: the connection is aborting or a write failed.
  enum class fault_step_end : std::uint8_t { more, source_ended, over };
  asio::awaitable<fault_step_end> fault_step(dir d, fault_pace& pace,
                                             std::unique_ptr<std::uint8_t[]>& copy,
                                             relay_result& res);
  asio::awaitable<bool> fault_write(dir d, std::span<const std::uint8_t> bytes, fault_pace& pace);
  asio::awaitable<bool> fault_pause(std::chrono::steady_clock::duration d);
  void fire_fault_reset();

  // ---- transparent.cpp
  // take_original_dst: the original destination as the upstream target; false when there is
  // none (the connection was ended as route/no_route, record finished).
  bool take_original_dst(host_port& out);

  // ---- proxy_protocol.cpp
  asio::awaitable<flight_end> read_proxy_header();
  // accept_proxy_header: the listener's proxy_protocol_in step; false when the connection was
  // ended (record finished).
  asio::awaitable<bool> accept_proxy_header();
  void reject_proxy_header(const char* why);
  // send_proxy_header: the received header (forward) or a generated one (proxy_protocol_out),
  // written upstream before any client byte.
  asio::awaitable<void> send_proxy_header();

  // ---- connection_stream.cpp: first replies and stream
  void start_stream_phase();
  void note_timer_end();
  void on_stream_watch();
  void end_stream_phase();
  void relay_done();
  // The stream phase of one direction: start_relay (a bare wait until its first byte), then the
  // inspection as a chain of handlers (no coroutine frame per direction): inspect_forward_held
  // (the first-flight bytes held so far), inspect_next / on_inspect_read (read, inspect and
  // forward the rest of the flight, a read at a time), inspect_end (how the source ended, or on
  // to stream); then start_stream: splice (callback driven) or copy_relay (capture bound,
  // --no-splice, fallback). A fault's direction runs fault_relay instead of the inspection. Each
  // path ends in relay_done() exactly once.
  void start_relay(dir d);
  // wait_readable: a bare reactor wait for d's source to be readable (no buffer, no frame while
  // it waits), then spawn_inspect (`first`: nothing of d read yet) or inspect_next; the relay is
  // done if cancelled or aborting.
  void wait_readable(dir d, bool first);
  void spawn_inspect(dir d);
  void inspect_forward_held(dir d);
  void inspect_after_held(dir d);
  void inspect_next(dir d);
  // read_flight_now: after a wait reported d's source readable, one non-blocking read of what is
  // there, handed to on_inspect_read; false when nothing was (the caller waits again).
  bool read_flight_now(dir d);
  void on_inspect_read(dir d, const std::error_code& ec, std::size_t n);
  void inspect_end(dir d, relay_result res);
  void inspect_flight(dir d, bool final);
  void start_stream(dir d);
  void start_splice(dir d);
  void on_splice_end(dir d, const relay_result& r);
  void spawn_copy(dir d, bool fallback);
  // copy_relay: nullopt = the capture got its bytes, splice the rest.
  asio::awaitable<std::optional<relay_result>> copy_relay(dir d, bool fallback);
  // capture_copy: the read/write path while the recorder still wants bytes in `d`; returns
  // nullopt once the bound is reached (the caller splices the rest).
  asio::awaitable<std::optional<relay_result>> capture_copy(dir d, relay_counters c);
  void end_stream(dir d, const relay_result& r);
  void note_end(dir d, const relay_result& r);
  void note_source_end(dir d, const relay_result& r);
  void note_destination_end(dir d, const relay_result& r);
  void stop_relays();
  relay_counters counters(dir d);
  // note_forwarded: `n` of d's held first-flight bytes went out to its destination.
  void note_forwarded(dir d, std::size_t n);
  void on_bytes(dir d, std::size_t n);
  void record_bytes(dir d, const std::uint8_t* p, std::size_t n);
  void record_end(dir d, bool reset);

  std::array<side, 2> sides_;  // by dir: [c2u] = the client, [u2c] = the upstream
  const listener_runtime& listener_;
  worker_state& worker_;
  std::list<connection*>::iterator registration_;
  steady_timer watch_timer_;

  access_record record_;
  connection_facts facts_;
  std::chrono::steady_clock::time_point accepted_;
  std::chrono::steady_clock::time_point last_activity_;

  std::vector<std::uint8_t> proxy_header_in_;  // the received PROXY header (only its bytes)
  bool proxy_header_accepted_ = false;
  int proxy_out_version_ =
      0;  // the PROXY version to write upstream: the route's, else the listener's
  client_check client_check_;

  bool shutdown_requested_ = false;
  bool aborting_ = false;                        // the relays must return at their next wake-up
  std::unique_ptr<capture::recorder> recorder_;  // null when capture is off
  loop_guard::entry loop_entry_;                 // our upstream socket, while open
  loop_guard::chain chain_;                      // the listeners this connection came through
  int relays_running_ = 0;
  bool record_started_ = false;
  std::unique_ptr<live_conn> live_;  // the admin's view of it; null without a live registry
  std::int64_t connect_start_us_ = -1;
  asio::ip::tcp::endpoint peer_;          // the client's address, as accept(2) reported it
  std::unique_ptr<applied_fault> fault_;  // null unless a fault applies to this connection
  std::shared_ptr<phase_watch> watch_;    // made by the first begin_watch; shared with handlers
};

}  // namespace linesman::proxy
