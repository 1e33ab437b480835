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
  b.append(0, one);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.capacity(), 256U);
  EXPECT_EQ(b.get()[0], 0x16);
  const auto* first = b.get();
  b.append(1, one);  // the next byte of a dribbled hello: same buffer
  EXPECT_EQ(b.get(), first);
  EXPECT_EQ(b.capacity(), 256U);
  EXPECT_EQ(b.get()[1], 0x16);
}

TEST(FlightBuffer, NoBytesStillAllocates) {
  flight_buffer b;
  b.append(0, {});
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

// Appending read by read walks the steps, keeps every byte, and stops at kFlightBufferBytes.
TEST(FlightBuffer, AppendGrowsStepByStepKeepingTheBytesUpToTheBound) {
  flight_buffer b;
  const auto all = counting(kFlightBufferBytes);
  std::size_t len = 0;
  std::vector<std::size_t> capacities;
  for (const std::size_t n : {3, 200, 53, 1, 1000, 791, 7000, 7664}) {
    b.append(len, {all.data() + len, n});
    len += n;
    if (capacities.empty() || capacities.back() != b.capacity()) {
      capacities.push_back(b.capacity());
    }
  }
  EXPECT_EQ(len, kFlightBufferBytes);
  EXPECT_EQ(capacities, (std::vector<std::size_t>{256, 2048, kFlightBufferBytes}));
  EXPECT_TRUE(std::equal(all.begin(), all.end(), b.get()));
  EXPECT_TRUE(b.room(len).empty());
}

// An asynchronous read cannot know how much will come: it always gets the whole rest, so one
// arrival is one read (tls.hello_reads), with the bytes held so far kept.
TEST(FlightBuffer, RoomIsTheRestOfTheFullBufferKeepingTheBytes) {
  flight_buffer fresh;
  auto r = fresh.room(0);
  EXPECT_EQ(r.size(), kFlightBufferBytes);
  EXPECT_EQ(r.data(), fresh.get());

  flight_buffer b;
  const auto bytes = counting(100);
  b.append(0, bytes);
  ASSERT_EQ(b.capacity(), 256U);
  r = b.room(100);
  EXPECT_EQ(b.capacity(), kFlightBufferBytes);
  EXPECT_EQ(r.size(), kFlightBufferBytes - 100);
  EXPECT_EQ(r.data(), b.get() + 100);
  EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), b.get()));
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
