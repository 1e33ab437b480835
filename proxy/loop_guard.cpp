#include "proxy/loop_guard.hpp"

#include <algorithm>
#include <cstring>

namespace linesman::proxy {
namespace {

// put: the address as 16 bytes (IPv4 as IPv4-mapped IPv6, so both spellings of one address
// match) followed by the port, at `at`.
void put(const asio::ip::tcp::endpoint& ep, loop_guard::key& k, std::size_t at) {
  const auto a = ep.address();
  const auto v6 = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()) : a.to_v6();
  const auto bytes = v6.to_bytes();
  std::copy(bytes.begin(), bytes.end(), k.begin() + static_cast<std::ptrdiff_t>(at));
  k.at(at + 16) = static_cast<std::uint8_t>(ep.port() >> 8U);
  k.at(at + 17) = static_cast<std::uint8_t>(ep.port() & 0xffU);
}

loop_guard::key key_of(const asio::ip::tcp::endpoint& from, const asio::ip::tcp::endpoint& to) {
  loop_guard::key k{};
  put(from, k, 0);
  auto dest = to;
  if (dest.address().is_unspecified()) {
    dest.address(dest.address().is_v4() ? asio::ip::address(asio::ip::address_v4::loopback())
                                        : asio::ip::address(asio::ip::address_v6::loopback()));
  }
  put(dest, k, 18);
  return k;
}

}  // namespace

std::size_t loop_guard::key_hash::operator()(const key& k) const noexcept {
  // Eight bytes per step (the key is 36: four words and the last two ports' bytes), each word
  // mixed in with a multiply: every connection hashes its key four times (arrive, add, and
  // remove's find and erase), and FNV-1a's byte-at-a-time chain of 36 multiplies was most of it.
  static_assert(std::tuple_size_v<key> == 36, "four words and a 4-byte tail");
  constexpr std::uint64_t kMul = 0x9E3779B97F4A7C15ULL;
  std::uint64_t h = 0;
  for (std::size_t at = 0; at + 8 <= k.size(); at += 8) {
    std::uint64_t w = 0;
    std::memcpy(&w, k.data() + at, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29U;
  }
  std::uint32_t tail = 0;
  std::memcpy(&tail, k.data() + k.size() - 4, 4);
  h = (h ^ tail) * kMul;
  return static_cast<std::size_t>(h ^ (h >> 32U));
}

void loop_guard::add(const asio::ip::tcp::endpoint& local, const asio::ip::tcp::endpoint& remote,
                     const chain& c, entry& e) {
  remove(e);
  e.k = key_of(local, remote);
  e.held = true;
  std::lock_guard lock(mu_);
  sockets_.emplace(e.k, c);
}

void loop_guard::remove(entry& e) {
  if (!e.held) {
    return;
  }
  e.held = false;
  std::lock_guard lock(mu_);
  const auto it = sockets_.find(e.k);
  if (it != sockets_.end()) {
    sockets_.erase(it);
  }
}

std::optional<loop_guard::chain> loop_guard::arrive(const asio::ip::tcp::endpoint& peer,
                                                    const asio::ip::tcp::endpoint& local,
                                                    std::size_t index) const {
  const std::uint64_t bit = index < 64 ? std::uint64_t{1} << index : 0;
  chain c{bit, 1};
  const auto k = key_of(peer, local);
  std::lock_guard lock(mu_);
  const auto it = sockets_.find(k);
  if (it == sockets_.end()) {
    return c;  // a client of its own: the chain starts here
  }
  if ((it->second.listeners & bit) != 0 || it->second.hops >= kMaxHops) {
    return std::nullopt;
  }
  c.listeners |= it->second.listeners;
  c.hops += it->second.hops;
  return c;
}

}  // namespace linesman::proxy
