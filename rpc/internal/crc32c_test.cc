#include "rpc/internal/crc32c.h"

#include <string>

#include "gtest/gtest.h"

namespace nprpc::crc32c {
namespace {

TEST(Crc32c, MatchesPublishedCheckValues) {
  // RFC 3720 (iSCSI) B.4 test patterns and the standard "123456789" check.
  EXPECT_EQ(Value("123456789"), 0xe3069283u);
  EXPECT_EQ(Value(std::string(32, '\0')), 0x8a9136aau);
  EXPECT_EQ(Value(std::string(32, '\xff')), 0x62a8ab43u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Value(ascending), 0x46dd794eu);
  EXPECT_EQ(Value(""), 0u);
}

TEST(Crc32c, ReproducesBrpcChecksumVectorAndItsMask) {
  const std::string payload("\x0a\x05hello", 7);
  EXPECT_EQ(Value(payload), 0xa7d35fb9u);
  EXPECT_EQ(Mask(Value(payload)), 0x61f63a7eu);
}

TEST(Crc32c, UnmaskInvertsMask) {
  for (uint32_t crc : {0u, 1u, 0xa7d35fb9u, 0xffffffffu, 0x12345678u}) {
    EXPECT_EQ(Unmask(Mask(crc)), crc);
    EXPECT_NE(Mask(crc), crc);
  }
}

TEST(Crc32c, ExtendOverAnySplitEqualsWholeValue) {
  std::string data;
  for (int i = 0; i < 1000; ++i) data.push_back(static_cast<char>(i * 7 + 3));
  const uint32_t whole = Value(data);
  for (size_t split = 0; split <= data.size(); split += 37) {
    const uint32_t first = Value(data.data(), split);
    EXPECT_EQ(Extend(first, data.data() + split, data.size() - split), whole) << split;
  }
}

TEST(Crc32c, HardwareAndPortablePathsAgreeAtEveryAlignmentAndLength) {
  std::string data;
  for (int i = 0; i < 300; ++i) data.push_back(static_cast<char>(i * 131 + 17));
  for (size_t offset = 0; offset < 16; ++offset) {
    for (size_t n = 0; n + offset <= data.size(); n += 13) {
      EXPECT_EQ(Extend(0x1234u, data.data() + offset, n),
                crc32c_internal::ExtendPortable(0x1234u, data.data() + offset, n))
          << offset << " " << n;
    }
  }
}

}  // namespace
}  // namespace nprpc::crc32c
