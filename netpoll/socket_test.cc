#include "netpoll/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &len), 0);
  return value;
}

TEST(SetTcpKeepAlive, SetsProbesAndTheUserTimeout) {
  auto fd = CreateStreamSocket(AF_INET);
  ASSERT_TRUE(fd.ok()) << fd.status();
  TcpKeepAliveOptions options;
  options.enabled = true;
  options.idle = absl::Seconds(3);
  options.interval = absl::Seconds(1);
  options.count = 2;
  ASSERT_TRUE(SetTcpKeepAlive(fd->get(), options).ok());
  EXPECT_EQ(IntOption(fd->get(), SOL_SOCKET, SO_KEEPALIVE), 1);
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_KEEPIDLE), 3);
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_KEEPINTVL), 1);
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_KEEPCNT), 2);
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_USER_TIMEOUT), 5000);
}

TEST(SetTcpKeepAlive, DisabledLeavesTheSocketAlone) {
  auto fd = CreateStreamSocket(AF_INET);
  ASSERT_TRUE(fd.ok());
  ASSERT_TRUE(SetTcpKeepAlive(fd->get(), TcpKeepAliveOptions()).ok());
  EXPECT_EQ(IntOption(fd->get(), SOL_SOCKET, SO_KEEPALIVE), 0);
}

TEST(SetTcpKeepAlive, SubSecondTimesRoundUpToOneSecond) {
  auto fd = CreateStreamSocket(AF_INET6);
  ASSERT_TRUE(fd.ok());
  TcpKeepAliveOptions options;
  options.enabled = true;
  options.idle = absl::Milliseconds(200);
  options.interval = absl::Milliseconds(100);
  ASSERT_TRUE(SetTcpKeepAlive(fd->get(), options).ok());
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_KEEPIDLE), 1);
  EXPECT_EQ(IntOption(fd->get(), IPPROTO_TCP, TCP_KEEPINTVL), 1);
}

}  // namespace
}  // namespace netpoll
