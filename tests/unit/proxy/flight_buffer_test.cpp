#include "proxy/flight_buffer.hpp"

#include <cstdint>
#include <numeric>
#include <vector>

#include <gtest/gtest.h>

namespace linesman::proxy {
namespace {

std::vector<std::uint8_t> counting(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  std::iota(v.begin(), v.end(), std::uint8_t{0});
  return v;
}

TEST(FlightBuffer, EmptyUntilTheFirstBytes) {
  flight_buffer b;
  EXPECT_FALSE(b);
  EXPECT_EQ(b.get(), nullptr);
  EXPECT_EQ(b.capacity(), 0U);
}

// The soak's dribbling clients: a few bytes must not cost the full inspection buffer.
TEST(FlightBuffer, AFewBytesHoldTheSmallestStep) {
  flight_buffer b;
  const std::uint8_t one[] = {0x16};
  b.assign(one);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.capacity(), 256U);
  EXPECT_EQ(b.get()[0], 0x16);
  // The next reads go to the same buffer while it has room.
  const auto r = b.room(1);
  EXPECT_EQ(r.size(), 255U);
  EXPECT_EQ(r.data(), b.get() + 1);
}

TEST(FlightBuffer, NoBytesStillAllocates) {
  flight_buffer b;
  b.assign({});
  EXPECT_TRUE(b);  // the connection tells "read once" from "never read" by get() != null
  EXPECT_EQ(b.capacity(), 256U);
}

TEST(FlightBuffer, AssignPicksTheSmallestStepThatHolds) {
  for (const auto& [n, want] :
       std::vector<std::pair<std::size_t, std::size_t>>{{256, 256},
                                                        {257, 2048},
                                                        {517, 2048},
                                                        {2048, 2048},
                                                        {2049, kFlightBufferBytes},
                                                        {kFlightBufferBytes, kFlightBufferBytes}}) {
    flight_buffer b;
    const auto bytes = counting(n);
    b.assign(bytes);
    EXPECT_EQ(b.capacity(), want) << n;
    EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), b.get())) << n;
  }
}

TEST(FlightBuffer, ANewBufferForAnAsynchronousReadHoldsACommonHello) {
  flight_buffer b;
  const auto r = b.room(0);
  EXPECT_EQ(r.size(), 2048U);
  EXPECT_EQ(r.data(), b.get());
}

// Filling the buffer read by read walks the steps, keeps every byte, and stops at
// kFlightBufferBytes: room() is then empty, as `f.len == kFlightBufferBytes` ends inspection.
TEST(FlightBuffer, GrowsStepByStepKeepingTheBytesUpToTheBound) {
  flight_buffer b;
  const std::uint8_t first[] = {1, 2, 3};
  b.assign(first);
  std::size_t len = 3;
  std::vector<std::size_t> capacities{b.capacity()};
  for (int reads = 0; reads < 100 && len < kFlightBufferBytes; ++reads) {
    auto r = b.room(len);
    ASSERT_FALSE(r.empty());
    for (std::size_t i = 0; i < r.size(); ++i) {
      r[i] = static_cast<std::uint8_t>(len + i);
    }
    len += r.size();
    if (capacities.back() != b.capacity()) {
      capacities.push_back(b.capacity());
    }
  }
  EXPECT_EQ(len, kFlightBufferBytes);
  EXPECT_EQ(capacities, (std::vector<std::size_t>{256, 2048, kFlightBufferBytes}));
  EXPECT_TRUE(b.room(len).empty());
  EXPECT_EQ(b.get()[0], 1);
  EXPECT_EQ(b.get()[2], 3);
  for (std::size_t i = 3; i < len; ++i) {
    ASSERT_EQ(b.get()[i], static_cast<std::uint8_t>(i)) << i;
  }
}

TEST(FlightBuffer, ResetFreesIt) {
  flight_buffer b;
  (void)b.room(0);
  b.reset();
  EXPECT_FALSE(b);
  EXPECT_EQ(b.capacity(), 0U);
}

}  // namespace
}  // namespace linesman::proxy
