#include "proxy/loop_guard.hpp"

#include <algorithm>

namespace linesman::proxy {
namespace {

// key_of: the address as 16 bytes (IPv4 as IPv4-mapped IPv6, so both spellings of one address
// match) followed by the port.
std::array<std::uint8_t, 18> key_of(const asio::ip::tcp::endpoint& ep) {
  std::array<std::uint8_t, 18> k{};
  const auto a = ep.address();
  const auto v6 = a.is_v4() ? asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4())
                            : a.to_v6();
  const auto bytes = v6.to_bytes();
  std::copy(bytes.begin(), bytes.end(), k.begin());
  k[16] = static_cast<std::uint8_t>(ep.port() >> 8U);
  k[17] = static_cast<std::uint8_t>(ep.port() & 0xffU);
  return k;
}

}  // namespace

std::size_t loop_guard::key_hash::operator()(const std::array<std::uint8_t, 18>& k) const noexcept {
  std::size_t h = 1469598103934665603ULL;  // FNV-1a
  for (const auto b : k) {
    h = (h ^ b) * 1099511628211ULL;
  }
  return h;
}

void loop_guard::add(const asio::ip::tcp::endpoint& local, entry& e) {
  remove(e);
  e.key = key_of(local);
  e.held = true;
  std::lock_guard lock(mu_);
  endpoints_.insert(e.key);
}

void loop_guard::remove(entry& e) {
  if (!e.held) {
    return;
  }
  e.held = false;
  std::lock_guard lock(mu_);
  const auto it = endpoints_.find(e.key);
  if (it != endpoints_.end()) {
    endpoints_.erase(it);
  }
}

bool loop_guard::is_ours(const asio::ip::tcp::endpoint& peer) const {
  const auto k = key_of(peer);
  std::lock_guard lock(mu_);
  return endpoints_.contains(k);
}

}  // namespace linesman::proxy
