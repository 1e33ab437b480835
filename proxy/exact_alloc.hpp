// exact_alloc: the allocator bound to the operations a connection keeps pending while it idles
// (a relay's wait for its source, the stream phase's watch timer).
//
// Why not Asio's default: it recycles the last blocks its thread freed and hands one to any
// operation that fits in it, so an idle wait (about 80 bytes) often sits for hours in the 176-byte
// block a first-flight write freed. With thousands of idle connections that was about 100 bytes
// each (bench/results/2026-12-03-core3/README.md). These operations are allocated at their own size
// instead. The waits of a busy connection are short-lived and stay on Asio's recycling allocator.
#pragma once

#include <cstddef>
#include <new>
#include <utility>

#include <asio/bind_allocator.hpp>

namespace linesman::proxy {

template <class T>
struct exact_allocator {
  using value_type = T;
  exact_allocator() = default;
  template <class U>
  exact_allocator(const exact_allocator<U>& /*other*/) noexcept {}  // NOLINT: rebind
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t /*n*/) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const exact_allocator<U>& /*other*/) const noexcept {
    return true;
  }
};

// exact: `handler` with its operation allocated at its own size.
template <class Handler>
auto exact(Handler&& handler) {
  return asio::bind_allocator(exact_allocator<void>{}, std::forward<Handler>(handler));
}

}  // namespace linesman::proxy
