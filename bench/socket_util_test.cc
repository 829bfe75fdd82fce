#include "bench/socket_util.h"

#include <arpa/inet.h>
#include <unistd.h>

#include "gtest/gtest.h"

namespace bench {
namespace {

TEST(ParseLoopbackAddressTest, AcceptsLoopbackLiteralAndLocalhost) {
  absl::StatusOr<sockaddr_in> a = ParseLoopbackAddress("127.0.0.1:8080");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(ntohs(a->sin_port), 8080);
  EXPECT_EQ(FormatAddress(*a), "127.0.0.1:8080");

  absl::StatusOr<sockaddr_in> b = ParseLoopbackAddress("localhost:0");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(FormatAddress(*b), "127.0.0.1:0");

  EXPECT_TRUE(ParseLoopbackAddress("127.1.2.3:65535").ok());
}

TEST(ParseLoopbackAddressTest, RejectsNonLoopbackHosts) {
  EXPECT_EQ(ParseLoopbackAddress("10.0.0.1:80").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLoopbackAddress("0.0.0.0:80").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ParseLoopbackAddress("example.com:80").status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ParseLoopbackAddressTest, RejectsMalformedPorts) {
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1").ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:").ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:65536").ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:-1").ok());
  EXPECT_FALSE(ParseLoopbackAddress("127.0.0.1:http").ok());
}

TEST(ListenTcpTest, EphemeralPortIsReportedAndSharedWithReusePort) {
  absl::StatusOr<sockaddr_in> addr = ParseLoopbackAddress("127.0.0.1:0");
  ASSERT_TRUE(addr.ok());
  absl::StatusOr<int> first = ListenTcp(*addr, {.reuse_port = true});
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<int> port = LocalPort(*first);
  ASSERT_TRUE(port.ok()) << port.status();
  EXPECT_GT(*port, 0);

  sockaddr_in same = *addr;
  same.sin_port = htons(static_cast<uint16_t>(*port));
  absl::StatusOr<int> second = ListenTcp(same, {.reuse_port = true});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(*LocalPort(*second), *port);
  close(*first);
  close(*second);
}

TEST(RaiseFdLimitToHardTest, ReturnsAPositiveLimit) {
  absl::StatusOr<uint64_t> limit = RaiseFdLimitToHard();
  ASSERT_TRUE(limit.ok()) << limit.status();
  EXPECT_GT(*limit, 0u);
}

}  // namespace
}  // namespace bench
