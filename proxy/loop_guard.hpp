// loop_guard: the local endpoints of linesman's own upstream connections, process-wide, so that
// an accepted connection whose peer is one of them (a forwarding loop: an upstream that is one of
// our own listeners, directly or through another listener) is recognised at accept and ended at
// once instead of multiplying until every descriptor is gone.
//
// Ownership: one per server, shared by every worker (thread-safe: one mutex, taken once when an
// upstream connects, once when it closes, and once per accepted connection).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <unordered_set>

#include <asio/ip/tcp.hpp>

namespace linesman::proxy {

class loop_guard {
 public:
  // entry: a registration held by the connection whose upstream socket it names.
  struct entry {
    bool held = false;
    std::array<std::uint8_t, 18> key{};
  };

  // add: remember `local` (our upstream socket's own address) until remove(e).
  void add(const asio::ip::tcp::endpoint& local, entry& e);
  // remove: forget e's endpoint; no-op when e holds none.
  void remove(entry& e);
  // is_ours: whether `peer` (an accepted connection's peer) is one of our upstream sockets.
  [[nodiscard]] bool is_ours(const asio::ip::tcp::endpoint& peer) const;

 private:
  struct key_hash {
    std::size_t operator()(const std::array<std::uint8_t, 18>& k) const noexcept;
  };
  mutable std::mutex mu_;
  std::unordered_multiset<std::array<std::uint8_t, 18>, key_hash> endpoints_;
};

}  // namespace linesman::proxy
