// connection_detail: small helpers shared by the files that implement proxy/connection.hpp
// (one per phase). Not part of the proxy library's interface.
#pragma once

#include "proxy/access_record.hpp"
#include "proxy/address.hpp"
#include "proxy/awaitable.hpp"
#include "proxy/inspect.hpp"

#include <array>
#include <cstdint>
#include <span>
#include <system_error>

#include <asio.hpp>

namespace linesman::proxy::detail {

using steady = std::chrono::steady_clock;

// to_value: an endpoint as the record shows it (IPv4-mapped IPv6 as plain IPv4).
inline endpoint_value to_value(const asio::ip::tcp::endpoint& ep) {
  endpoint_value v;
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  v.ip = addr.is_v4() ? ipv4_text(addr.to_v4().to_uint()) : addr.to_string();
  v.port = ep.port();
  return v;
}

// flight_scratch: the worker thread's buffer for a non-blocking first-flight read. Only the bytes
// read are kept (copied into the flight's own buffer, at their size) before anything else runs on
// the thread, so a flight that arrives in one read never costs a full-size buffer.
inline std::span<std::uint8_t> flight_scratch() {
  thread_local std::array<std::uint8_t, kFlightBufferBytes> scratch;
  return scratch;
}

// errno_of: the OS error behind `ec`, 0 when it is not one (eof, operation_aborted...).
inline int errno_of(const std::error_code& ec) {
  return ec.category() == asio::error::get_system_category() ? ec.value() : 0;
}

// cancelled: whether the race this coroutine runs in was decided (awaitable operator ||). A child
// of `||` must look after every resume: an operation that had already completed when the race
// was decided is not cancelled, and the next one would not be either (the signal fires once).
inline asio::awaitable<bool> cancelled() {
  const auto state = co_await asio::this_coro::cancellation_state;
  co_return state.cancelled() != asio::cancellation_type::none;
}

}  // namespace linesman::proxy::detail
