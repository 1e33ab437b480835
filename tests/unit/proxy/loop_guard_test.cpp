// loop_guard: a chain of our listeners passes, a connection that arrives again at a listener it
// passed is a loop, and the key matches what the accepting side sees.
#include "proxy/loop_guard.hpp"

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

asio::ip::tcp::endpoint ep(const char* ip, unsigned short port) {
  return {asio::ip::make_address(ip), port};
}

TEST(LoopGuard, AClientOfItsOwnStartsAChain) {
  loop_guard g;
  const auto c = g.arrive(ep("127.0.0.1", 40000), ep("127.0.0.1", 8080), 0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->listeners, 1U);
  EXPECT_EQ(c->hops, 1U);
}

TEST(LoopGuard, AChainThroughTwoListenersPassesAndComingBackIsALoop) {
  loop_guard g;
  loop_guard::entry a_to_b;
  loop_guard::entry b_to_a;
  const auto at_a = g.arrive(ep("127.0.0.1", 40000), ep("127.0.0.1", 8080), 0);
  g.add(ep("127.0.0.1", 40001), ep("127.0.0.1", 8081), *at_a, a_to_b);  // a connects to b
  const auto at_b = g.arrive(ep("127.0.0.1", 40001), ep("127.0.0.1", 8081), 1);
  ASSERT_TRUE(at_b.has_value());
  EXPECT_EQ(at_b->listeners, 3U);
  EXPECT_EQ(at_b->hops, 2U);
  g.add(ep("127.0.0.1", 40002), ep("127.0.0.1", 8080), *at_b, b_to_a);  // b connects back to a
  EXPECT_FALSE(g.arrive(ep("127.0.0.1", 40002), ep("127.0.0.1", 8080), 0).has_value());
  // The same port to another listener address is another socket: no false loop.
  EXPECT_TRUE(g.arrive(ep("127.0.0.1", 40002), ep("127.0.0.2", 8080), 0).has_value());
  g.remove(b_to_a);
  EXPECT_TRUE(g.arrive(ep("127.0.0.1", 40002), ep("127.0.0.1", 8080), 0).has_value());
  g.remove(b_to_a);  // twice: a no-op
}

TEST(LoopGuard, AnUnspecifiedUpstreamIsLoopbackAndMappedAddressesMatch) {
  loop_guard g;
  loop_guard::entry e;
  const auto first = g.arrive(ep("127.0.0.1", 40000), ep("127.0.0.1", 9000), 0);
  g.add(ep("::ffff:127.0.0.1", 40003), ep("0.0.0.0", 9000), *first, e);
  EXPECT_FALSE(g.arrive(ep("127.0.0.1", 40003), ep("127.0.0.1", 9000), 0).has_value());
}

TEST(LoopGuard, TooManyHopsIsALoop) {
  loop_guard g;
  std::vector<loop_guard::entry> entries(loop_guard::kMaxHops + 1);
  auto c = g.arrive(ep("127.0.0.1", 30000), ep("127.0.0.1", 1000), 0);
  for (unsigned i = 1; i <= loop_guard::kMaxHops; ++i) {
    ASSERT_TRUE(c.has_value()) << i;
    const auto from = ep("127.0.0.1", static_cast<unsigned short>(30000 + i));
    const auto to = ep("127.0.0.1", static_cast<unsigned short>(1000 + i));
    g.add(from, to, *c, entries[i]);
    c = g.arrive(from, to, 100 + i);  // listeners past 63 count only in hops
  }
  EXPECT_FALSE(c.has_value());
}

}  // namespace
}  // namespace linesman::proxy
