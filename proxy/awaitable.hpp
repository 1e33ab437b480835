// awaitable: the completion token of every coroutine in proxy/. `co_await op(..., kTuple)` gives
// the error code with the result instead of throwing: the data plane uses error codes.
#pragma once

#include <asio/experimental/as_tuple.hpp>
#include <asio/use_awaitable.hpp>

namespace linesman::proxy {

inline constexpr auto kTuple = asio::experimental::as_tuple(asio::use_awaitable);

}  // namespace linesman::proxy
