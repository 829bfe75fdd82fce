#include "netpoll/socket_address.h"

#include <sys/socket.h>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

TEST(SocketAddress, ParsesIpv4AndPrintsItBack) {
  auto addr = SocketAddress::Parse("127.0.0.1:8080");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->family(), AF_INET);
  EXPECT_EQ(addr->port(), 8080);
  EXPECT_EQ(addr->ToString(), "127.0.0.1:8080");
}

TEST(SocketAddress, ParsesBracketedIpv6) {
  auto addr = SocketAddress::Parse("[::1]:9");
  ASSERT_TRUE(addr.ok()) << addr.status();
  EXPECT_EQ(addr->family(), AF_INET6);
  EXPECT_EQ(addr->ToString(), "[::1]:9");
}

TEST(SocketAddress, ParsesUnixPathAndAbstractName) {
  auto path = SocketAddress::Parse("unix:/tmp/np.sock");
  ASSERT_TRUE(path.ok());
  EXPECT_TRUE(path->is_unix());
  EXPECT_EQ(path->ToString(), "unix:/tmp/np.sock");
  auto abstract = SocketAddress::Parse("unix:@np-test");
  ASSERT_TRUE(abstract.ok());
  EXPECT_EQ(abstract->ToString(), "unix:@np-test");
}

TEST(SocketAddress, RejectsNamesMissingPortsAndBadPorts) {
  EXPECT_FALSE(SocketAddress::Parse("localhost:80").ok());
  EXPECT_FALSE(SocketAddress::Parse("127.0.0.1").ok());
  EXPECT_FALSE(SocketAddress::Parse("127.0.0.1:70000").ok());
  EXPECT_FALSE(SocketAddress::Parse("[::1:80").ok());
  EXPECT_FALSE(SocketAddress::Parse("unix:").ok());
}

TEST(SocketAddress, ResolveAcceptsNumericAndLocalhost) {
  auto numeric = SocketAddress::Resolve("127.0.0.1:1");
  ASSERT_TRUE(numeric.ok());
  EXPECT_EQ(numeric->size(), 1u);
  auto local = SocketAddress::Resolve("localhost:1");
  ASSERT_TRUE(local.ok()) << local.status();
  EXPECT_FALSE(local->empty());
  EXPECT_EQ(local->front().port(), 1);
}

}  // namespace
}  // namespace netpoll
