#include "tls/byte_reader.hpp"

#include <array>
#include <cstdint>

#include <gtest/gtest.h>

namespace linesman::tls {
namespace {

constexpr std::array<std::uint8_t, 7> kBytes = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07};

TEST(ByteReader, ReadsBigEndianAndAdvances) {
  byte_reader r(kBytes);
  std::uint8_t a = 0;
  std::uint16_t b = 0;
  std::uint32_t c = 0;
  ASSERT_TRUE(r.read_u8(a));
  ASSERT_TRUE(r.read_u16(b));
  ASSERT_TRUE(r.read_u24(c));
  EXPECT_EQ(a, 0x01);
  EXPECT_EQ(b, 0x0203);
  EXPECT_EQ(c, 0x040506U);
  EXPECT_EQ(r.remaining(), 1U);
}

TEST(ByteReader, FailedReadLeavesCursorAndOutputUntouched) {
  byte_reader r(std::span<const std::uint8_t>(kBytes).first(3));
  std::uint32_t v = 0xdeadbeef;
  EXPECT_FALSE(r.read_u32(v));
  EXPECT_EQ(v, 0xdeadbeefU);
  EXPECT_EQ(r.remaining(), 3U);
  std::span<const std::uint8_t> s;
  EXPECT_FALSE(r.read_bytes(4, s));
  EXPECT_TRUE(s.empty());
  EXPECT_FALSE(r.skip(4));
  EXPECT_TRUE(r.skip(3));
  EXPECT_TRUE(r.empty());
  std::uint8_t u = 9;
  EXPECT_FALSE(r.read_u8(u));
  EXPECT_EQ(u, 9);
}

TEST(ByteReader, PrefixedVectorsAreBoundedByTheirLength) {
  // u16 length 3, body 0xaa 0xbb 0xcc, then one trailing byte.
  constexpr std::array<std::uint8_t, 6> in = {0x00, 0x03, 0xaa, 0xbb, 0xcc, 0xdd};
  byte_reader r(in);
  byte_reader body;
  ASSERT_TRUE(r.read_u16_prefixed(body));
  EXPECT_EQ(body.remaining(), 3U);
  EXPECT_EQ(r.remaining(), 1U);
  std::uint32_t v = 0;
  EXPECT_FALSE(body.read_u32(v));  // cannot read past the vector's end into the trailing byte
}

TEST(ByteReader, CutPrefixedVectorConsumesNothing) {
  constexpr std::array<std::uint8_t, 3> in = {0x05, 0xaa, 0xbb};  // claims 5, has 2
  byte_reader r(in);
  byte_reader body;
  EXPECT_FALSE(r.read_u8_prefixed(body));
  EXPECT_EQ(r.remaining(), 3U);
  constexpr std::array<std::uint8_t, 2> cut_len = {0x00, 0x00};
  byte_reader r24(cut_len);  // a u24 prefix with only two bytes of length
  EXPECT_FALSE(r24.read_u24_prefixed(body));
  EXPECT_EQ(r24.remaining(), 2U);
}

TEST(ByteReader, PeekDoesNotMoveAndStartsWithChecks) {
  byte_reader r(kBytes);
  std::uint16_t p = 0;
  ASSERT_TRUE(r.peek_u16(p));
  EXPECT_EQ(p, 0x0102);
  EXPECT_EQ(r.remaining(), kBytes.size());
  constexpr std::array<std::uint8_t, 2> yes = {0x01, 0x02};
  constexpr std::array<std::uint8_t, 2> no = {0x01, 0x03};
  EXPECT_TRUE(r.starts_with(yes));
  EXPECT_FALSE(r.starts_with(no));
  EXPECT_FALSE(byte_reader(std::span<const std::uint8_t>(kBytes).first(1)).starts_with(yes));
}

TEST(ByteReader, EmptyInputIsSafe) {
  byte_reader r;
  std::uint8_t v = 0;
  EXPECT_FALSE(r.read_u8(v));
  EXPECT_FALSE(r.peek_u8(v));
  EXPECT_TRUE(r.skip(0));
  std::span<const std::uint8_t> s;
  EXPECT_TRUE(r.read_bytes(0, s));
}

}  // namespace
}  // namespace linesman::tls
