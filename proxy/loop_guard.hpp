// loop_guard: linesman's own upstream connections, process-wide, each with the chain of our
// listeners it came through, so that an accepted connection that is one of them can be told
// apart: a chain (listener a feeds listener b, which connects elsewhere) is fine, a loop (a
// connection arrives again at a listener it already passed, directly or through others) is
// recognised at accept and ended at once instead of multiplying until every descriptor is gone.
//
// Ownership: one per server, shared by every worker (thread-safe: one mutex, taken once when an
// upstream connects, once when it closes, and once per accepted connection).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <asio/ip/tcp.hpp>

namespace linesman::proxy {

class loop_guard {
 public:
  // chain: the listeners a connection passed through (bit i = listener i; listeners past 63
  // are only counted in hops) and how many of our listeners it passed.
  struct chain {
    std::uint64_t listeners = 0;
    std::uint32_t hops = 0;
  };
  // kMaxHops: a chain longer than this is treated as a loop whatever its listeners.
  static constexpr std::uint32_t kMaxHops = 16;

  // key: our socket's local address and port and the address and port it connected to (an
  // unspecified address, which Linux connects to loopback, as loopback): the accepting side sees
  // the same four as its peer and its own address.
  using key = std::array<std::uint8_t, 36>;
  // entry: a registration held by the connection whose upstream socket it names.
  struct entry {
    bool held = false;
    key k{};
  };

  // add: our upstream socket `local` -> `remote` carries a connection with chain `c` (which
  // already includes the listener it was accepted on), until remove(e).
  void add(const asio::ip::tcp::endpoint& local, const asio::ip::tcp::endpoint& remote,
           const chain& c, entry& e);
  // remove: forget e's socket; no-op when e holds none.
  void remove(entry& e);
  // arrive: the chain of a connection accepted on listener `index` at `local` from `peer`;
  // nullopt when it is a loop (it already passed that listener, or too many of ours).
  [[nodiscard]] std::optional<chain> arrive(const asio::ip::tcp::endpoint& peer,
                                            const asio::ip::tcp::endpoint& local,
                                            std::size_t index) const;

 private:
  struct key_hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  mutable std::mutex mu_;
  std::unordered_multimap<key, chain, key_hash> sockets_;
};

}  // namespace linesman::proxy
