// transparent: transparent interception (nftables REDIRECT/TPROXY in front of linesman): the
// destination the client dialled before the redirect, read from conntrack's original tuple.
#pragma once

#include "proxy/access_record.hpp"

#include <optional>

namespace linesman::proxy {

// original_dst: SO_ORIGINAL_DST (IP6T_SO_ORIGINAL_DST for IPv6) of the accepted socket `fd`;
// nullopt when the socket has none (not redirected, no conntrack).
std::optional<endpoint_value> original_dst(int fd, bool v6);

// redirect_loops: whether connecting to `original` would come straight back to the listener
// `local` (no redirect happened: the original destination is linesman itself).
bool redirect_loops(const endpoint_value& original, const endpoint_value& local);

}  // namespace linesman::proxy
