// The first-replies and stream phases of proxy/connection.hpp: each direction forwards the
// first-flight bytes held so far, inspects the rest of its first flight as it passes, then
// streams with splice(2) (or read/write while the capture wants bytes, with --no-splice, or
// where splice is unsupported). The idle watchdog is a timer handler; the connection owns itself
// here and deletes itself when both directions are done.
#include "proxy/connection.hpp"
#include "proxy/connection_detail.hpp"
#include "proxy/exact_alloc.hpp"

#include <spdlog/spdlog.h>

namespace linesman::proxy {
namespace {

using detail::steady;

// kCopyBufferBytes: the userspace buffer of the read/write fallback (only with --no-splice or
// when splice is unsupported) and of the capture's copy stage.
constexpr std::size_t kCopyBufferBytes = 65536;

capture::direction capture_dir_of(bool c2u) {
  return c2u ? capture::direction::client_to_server : capture::direction::server_to_client;
}

bool still_open(side_end e) { return e == side_end::none || e == side_end::open; }

}  // namespace

void connection::on_bytes(dir d, std::size_t n) {
  if (d == dir::c2u) {
    if (record_.timing.client_first_byte < 0) {
      record_.timing.client_first_byte = since_accept_us();
    }
    bump_counter(record_.bytes.from_client, n);
  } else {
    if (record_.timing.upstream_first_byte < 0) {
      record_.timing.upstream_first_byte = since_accept_us();
      if (listener_.stats != nullptr && record_.timing.upstream_connected >= 0) {
        listener_.stats->first_reply_seconds.observe_us(record_.timing.upstream_first_byte -
                                                        record_.timing.upstream_connected);
      }
      enter_phase(live_phase::stream);
    }
    bump_counter(record_.bytes.from_upstream, n);
  }
  last_activity_ = steady::now();
}

void connection::record_bytes(dir d, const std::uint8_t* p, std::size_t n) {
  if (recorder_) {
    recorder_->data(capture_dir_of(d == dir::c2u), {p, n});
  }
}

void connection::record_end(dir d, bool reset) {
  if (!recorder_) {
    return;
  }
  if (reset) {
    recorder_->rst(capture_dir_of(d == dir::c2u));
  } else {
    recorder_->fin(capture_dir_of(d == dir::c2u));
  }
}

void connection::stop_relays() {
  // The watchdog won, or one side ended with a reset: make both directions return at their next
  // wake-up, and wake them now.
  aborting_ = true;
  std::error_code ignored;
  client().cancel(ignored);
  upstream().cancel(ignored);
}

void connection::start_stream_phase() {
  last_activity_ = steady::now();
  if (watch_) {
    // No phase awaits an operation any more: a handler of an earlier round still queued keeps
    // its own reference and sees the round ended; the connection no longer holds the block.
    ++watch_->round;
    watch_.reset();
  }
  // The two directions run as their own state machines and the timer below is their watchdog.
  // (Not `(relay && relay) || watchdog`: the operators' frames would stay allocated for the
  // whole stream, several KB per idle connection.)
  relays_running_ = 2;
  start_relay(dir::c2u);
  start_relay(dir::u2c);
  // (A shutdown requested while no phase watched, e.g. during the PROXY header's write: at once.)
  watch_timer_.expires_at(relays_running_ == 0 || shutdown_requested_
                              ? steady::time_point::min()
                              : last_activity_ + listener_.cfg.limits.idle);
  watch_timer_.async_wait(exact([this](const std::error_code&) { on_stream_watch(); }));
}

void connection::relay_done() {
  if (--relays_running_ == 0) {
    watch_timer_.cancel();
  }
}

void connection::on_stream_watch() {
  if (relays_running_ == 0) {
    end_stream_phase();
    return;
  }
  // Woken by the deadline, by request_shutdown, or (never for a live relay) spuriously.
  if (facts_.fired == timer_fire::none) {
    const auto deadline = last_activity_ + listener_.cfg.limits.idle;
    if (shutdown_requested_ || steady::now() >= deadline) {
      facts_.fired = shutdown_requested_ ? timer_fire::shutdown : timer_fire::deadline;
      stop_relays();
      watch_timer_.expires_at(steady::time_point::max());  // relay_done() wakes us
    } else {
      // last_activity_ moves on every transfer; the timer is only re-armed when it fires, so a
      // busy connection costs one wake-up per idle period, not one per chunk.
      watch_timer_.expires_at(deadline);
    }
  } else {
    watch_timer_.expires_at(steady::time_point::max());
  }
  watch_timer_.async_wait(exact([this](const std::error_code&) { on_stream_watch(); }));
}

void connection::note_timer_end() {
  if (facts_.fired == timer_fire::none) {
    return;
  }
  const side_end how = facts_.fired == timer_fire::shutdown ? side_end::proxy : side_end::timeout;
  for (side_end* e : {&facts_.client_end, &facts_.upstream_end}) {
    if (still_open(*e)) {
      *e = how;
    }
  }
  if (!facts_.first_close) {
    facts_.first_close = stop_by::proxy;
  }
}

void connection::end_stream_phase() {
  for (side_end* e : {&facts_.client_end, &facts_.upstream_end}) {
    if (*e == side_end::none) {
      *e = side_end::open;
    }
  }
  note_timer_end();
  facts_.phase = record_.bytes.from_upstream > 0 ? stop_phase::stream : stop_phase::first_reply;
  close_sockets();
  finish();
  // run() returned true, so nobody else owns this connection, and no operation of it is
  // pending: both relays are done and this was the timer's last handler.
  delete this;
}

void connection::note_source_end(dir d, const relay_result& r) {
  side_end& src_end = end_of(d);
  side_end& dst_end = end_of(d == dir::c2u ? dir::u2c : dir::c2u);
  const stop_by src_by = d == dir::c2u ? stop_by::client : stop_by::upstream;
  if (!facts_.first_close) {
    facts_.first_close = src_by;
  }
  if (r.end == relay_end::src_eof) {
    if (still_open(src_end)) {
      src_end = side_end::fin;
    }
    // A FIN becomes a FIN: the other side may still answer (half-close). When that side has
    // already sent its own FIN (and we read all of it), both directions are over and the
    // close() that follows at once sends our FIN: one syscall less per connection.
    if (dst_end != side_end::fin) {
      std::error_code ignored;
      dst(d).socket.shutdown(asio::socket_base::shutdown_send, ignored);
    }
    return;
  }
  src_end = r.end == relay_end::src_reset ? side_end::rst : side_end::error;
  facts_.err = facts_.err != 0 ? facts_.err : r.err;
  if (still_open(dst_end)) {
    dst_end = side_end::proxy;
  }
  dst(d).reset_on_close = true;  // a reset is passed on as a reset
  stop_relays();
}

void connection::note_destination_end(dir d, const relay_result& r) {
  side_end& dst_end = end_of(d == dir::c2u ? dir::u2c : dir::c2u);
  side_end& src_end = end_of(d);
  dst_end = r.end == relay_end::dst_reset ? side_end::rst : side_end::error;
  facts_.err = facts_.err != 0 ? facts_.err : r.err;
  if (!facts_.first_close) {
    facts_.first_close = d == dir::c2u ? stop_by::upstream : stop_by::client;
  }
  if (still_open(src_end)) {
    src_end = side_end::proxy;
  }
  src(d).reset_on_close = true;
  stop_relays();
}

void connection::note_end(dir d, const relay_result& r) {
  // The capture gets each FIN/RST when it happens: a source's own end, or the reset a
  // destination answered with (which ends the other direction).
  if (r.end == relay_end::src_eof || r.end == relay_end::src_reset) {
    record_end(d, r.end == relay_end::src_reset);
  } else if (r.end == relay_end::dst_reset) {
    record_end(d == dir::c2u ? dir::u2c : dir::c2u, true);
  }
  switch (r.end) {
    case relay_end::src_eof:
    case relay_end::src_reset:
    case relay_end::src_error:
      note_source_end(d, r);
      break;
    case relay_end::dst_reset:
    case relay_end::dst_error:
      note_destination_end(d, r);
      break;
    case relay_end::cancelled:
    case relay_end::no_splice:
      break;
  }
}

void connection::wait_readable(dir d, bool first) {
  // (A flag, not a member function pointer: the pointer would make every pending wait of an idle
  // connection 16 bytes larger.)
  src(d).socket.async_wait(asio::socket_base::wait_read,
                           exact([this, d, first](const std::error_code& ec) {
                             if (ec || aborting_) {
                               relay_done();
                               return;
                             }
                             src(d).readable = true;
                             if (first) {
                               spawn_inspect(d);
                             } else {
                               inspect_next(d);
                             }
                           }));
}

void connection::start_relay(dir d) {
  const flight& f = src(d).first;
  const bool eof_seen = d == dir::c2u && facts_.client_end == side_end::fin;
  if (!f.buf && !f.done && !eof_seen && f.len == f.forwarded) {
    // Nothing of this direction read yet: wait for its first byte with a bare reactor wait, not
    // a suspended coroutine (an idle connection then holds no coroutine frame for it).
    wait_readable(d, true);
    return;
  }
  spawn_inspect(d);
}

void connection::spawn_inspect(dir d) {
  if (!fault_) {
    inspect_forward_held(d);
    return;
  }
  asio::co_spawn(client().get_executor(), fault_relay(d),
                 [this, d](const std::exception_ptr&, std::optional<relay_result> r) {
                   if (!r || aborting_) {
                     relay_done();
                   } else if (r->end != relay_end::cancelled) {
                     note_end(d, *r);
                     relay_done();
                   } else {
                     start_stream(d);
                   }
                 });
}

void connection::inspect_flight(dir d, bool final) {
  if (d == dir::c2u) {
    inspect_client(final);
    return;
  }
  auto& f = src(d).first;
  facts_.reply = inspect_upstream_flight({f.buf.get(), f.len}, client_spoke_tls(), final, record_);
  f.done = final || facts_.reply != reply_verdict::need_more;
}

void connection::inspect_forward_held(dir d) {
  // What the source sent while we were inspecting or connecting goes out first.
  flight& f = src(d).first;
  if (f.len == f.forwarded) {
    inspect_after_held(d);
    return;
  }
  asio::async_write(dst(d).socket, asio::buffer(f.buf.get() + f.forwarded, f.len - f.forwarded),
                    [this, d](const std::error_code& ec, std::size_t n) {
                      note_forwarded(d, n);
                      if (ec) {
                        note_end(d, classify_write_error(ec));
                        relay_done();
                        return;
                      }
                      inspect_after_held(d);
                    });
}

void connection::inspect_after_held(dir d) {
  if (d == dir::c2u && facts_.client_end == side_end::fin) {
    inspect_end(d, {relay_end::src_eof, 0});  // the client's FIN came with its flight
    return;
  }
  inspect_next(d);
}

void connection::inspect_next(dir d) {
  // The rest of this direction's first flight passes through the bounded buffer, each read
  // forwarded at once (never held back waiting for a complete hello). Each read takes at least
  // one byte into the bounded buffer or ends the inspection.
  flight& f = src(d).first;
  if (f.done || aborting_) {
    inspect_end(d, {relay_end::cancelled, 0});
    return;
  }
  if (src(d).readable) {
    src(d).readable = false;
    if (read_flight_now(d)) {
      return;
    }
  }
  if (!f.buf) {
    wait_readable(d, false);
    return;
  }
  const auto room = f.buf.room(f.len);
  src(d).socket.async_read_some(
      asio::buffer(room.data(), room.size()),
      [this, d](const std::error_code& ec, std::size_t n) { on_inspect_read(d, ec, n); });
}

bool connection::read_flight_now(dir d) {
  // A wait just reported the source readable: take what is there with one non-blocking read into
  // the worker's scratch, so the flight's buffer grows only by what came. (The asynchronous read
  // below needs the full-size buffer: it cannot know how much will come.)
  std::size_t n = 0;
  const auto ec = recv_flight(d, n);
  if (!ec) {
    return false;  // a wake-up with nothing to read: wait again
  }
  on_inspect_read(d, *ec, n);
  return true;
}

void connection::on_inspect_read(dir d, const std::error_code& ec, std::size_t n) {
  flight& f = src(d).first;
  if (aborting_ || ec == asio::error::operation_aborted) {
    relay_done();
    return;
  }
  if (ec) {
    inspect_flight(d, true);
    inspect_end(d, classify_read_error(ec));
    return;
  }
  const std::size_t start = f.len;
  src(d).drained = start + n < kFlightBufferBytes;  // (the read asked for the rest of the buffer)
  record_bytes(d, f.buf.get() + start, n);
  on_bytes(d, n);
  f.len += n;
  ++f.reads;
  // The reply has started: whatever the client sent before it was its first flight.
  inspect_flight(d, f.len == kFlightBufferBytes || (d == dir::c2u && dst(d).first.len > 0));
  asio::async_write(dst(d).socket, asio::buffer(f.buf.get() + start, n),
                    [this, d](const std::error_code& wec, std::size_t m) {
                      note_forwarded(d, m);
                      if (aborting_) {
                        relay_done();  // (a write failing as the connection aborts says nothing)
                      } else if (wec) {
                        note_end(d, classify_write_error(wec));
                        relay_done();
                      } else {
                        inspect_next(d);
                      }
                    });
}

void connection::inspect_end(dir d, relay_result res) {
  flight& f = src(d).first;
  if (d == dir::u2c && !f.done) {
    inspect_flight(d, true);
  }
  // Inspection is over for this direction: give its buffer back before the long stream phase.
  f.buf.reset();
  if (aborting_) {
    relay_done();
  } else if (res.end != relay_end::cancelled) {
    note_end(d, res);  // the source ended during its first flight
    relay_done();
  } else {
    start_stream(d);
  }
}

relay_counters connection::counters(dir d) {
  const bool c2u = d == dir::c2u;
  return {c2u ? &record_.bytes.from_client : &record_.bytes.from_upstream,
          c2u ? &record_.bytes.to_upstream : &record_.bytes.to_client, &last_activity_, &aborting_};
}

void connection::note_forwarded(dir d, std::size_t n) {
  *counters(d).to += n;
  src(d).first.forwarded += n;
}

void connection::start_stream(dir d) {
  if ((recorder_ && recorder_->wants_more(capture_dir_of(d == dir::c2u))) || worker_.no_splice) {
    spawn_copy(d, false);
    return;
  }
  start_splice(d);
}

void connection::start_splice(dir d) {
  src(d).uncaptured_from = *counters(d).from;
  // A client whose first flight was read to its end waits for the answer: its relay starts with
  // a wait, not a splice that would say EAGAIN (the wait's epoll_ctl re-arm reports bytes that
  // came in between). Not the upstream: it often closes right after its reply, and its FIN is
  // then already queued for the splice to read.
  const bool wait_first = d == dir::c2u && src(d).drained;
  src(d).relay.start(
      src(d).socket, dst(d).socket, worker_.pipes, counters(d),
      [](void* self, int tag, const relay_result& r) {
        static_cast<connection*>(self)->on_splice_end(static_cast<dir>(tag), r);
      },
      this, static_cast<int>(d), wait_first);
}

void connection::on_splice_end(dir d, const relay_result& r) {
  if (r.end == relay_end::no_splice) {
    spdlog::debug("{} splice unavailable ({}); using read/write", record_.id, errno_name(r.err));
    if (listener_.stats != nullptr) {
      listener_.stats->splice_fallbacks.fetch_add(1, std::memory_order_relaxed);
    }
    spawn_copy(d, true);
    return;
  }
  end_stream(d, r);
}

void connection::spawn_copy(dir d, bool fallback) {
  asio::co_spawn(client().get_executor(), copy_relay(d, fallback),
                 [this, d](const std::exception_ptr&, std::optional<relay_result> r) {
                   if (!r && !aborting_) {
                     start_splice(d);  // the capture has what it wants: splice the rest
                   } else {
                     end_stream(d, r.value_or(relay_result{relay_end::cancelled, 0}));
                   }
                 });
}

asio::awaitable<std::optional<relay_result>> connection::copy_relay(dir d, bool fallback) {
  co_await asio::this_coro::throw_if_cancelled(false);
  if (!fallback && recorder_ && recorder_->wants_more(capture_dir_of(d == dir::c2u))) {
    // The recorder still wants bytes: copy through userspace until its bound, then splice.
    // (A named local: GCC 12 miscompiles co_await inside conditions.)
    const std::optional<relay_result> r = co_await capture_copy(d, counters(d));
    if (r) {
      co_return r;
    }
    if (aborting_) {
      co_return relay_result{relay_end::cancelled, 0};
    }
  }
  if (!fallback && !worker_.no_splice) {
    co_return std::nullopt;
  }
  src(d).uncaptured_from = *counters(d).from;
  auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kCopyBufferBytes);
  const relay_result r = co_await copy_stream(src(d).socket, dst(d).socket,
                                              {buf.get(), kCopyBufferBytes}, counters(d));
  co_return r;
}

asio::awaitable<std::optional<relay_result>> connection::capture_copy(dir d, relay_counters c) {
  co_await asio::this_coro::throw_if_cancelled(false);
  const auto cd = capture_dir_of(d == dir::c2u);
  auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kCopyBufferBytes);
  while (recorder_->wants_more(cd)) {
    auto [rec, n] =
        co_await src(d).socket.async_read_some(asio::buffer(buf.get(), kCopyBufferBytes), kTuple);
    if (aborting_) {
      co_return relay_result{relay_end::cancelled, 0};
    }
    if (rec) {
      co_return classify_read_error(rec);
    }
    *c.from += n;
    *c.last_activity = steady::now();
    recorder_->data(cd, {buf.get(), n});
    auto [wec, m] = co_await asio::async_write(dst(d).socket, asio::buffer(buf.get(), n), kTuple);
    *c.to += m;
    if (wec) {
      co_return classify_write_error(wec);
    }
    *c.last_activity = steady::now();
    if (aborting_) {
      co_return relay_result{relay_end::cancelled, 0};
    }
  }
  co_return std::nullopt;
}

void connection::end_stream(dir d, const relay_result& r) {
  const auto& since = src(d).uncaptured_from;
  if (recorder_ && since) {
    // Past the bound: only counted, so later sequence numbers (and the FIN) stay honest.
    recorder_->skipped(capture_dir_of(d == dir::c2u), *counters(d).from - *since);
  }
  if (!aborting_) {
    note_end(d, r);
  }
  relay_done();
}

}  // namespace linesman::proxy
