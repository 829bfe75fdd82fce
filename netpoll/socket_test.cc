#include "netpoll/socket.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

int IntOption(int fd, int level, int name) {
  int value = -1;
  socklen_t len = sizeof(value);
  EXPECT_EQ(getsockopt(fd, level, name, &value, &len), 0);
  return value;
}

// Connects the non-blocking `fd` to `to`, waits for the outcome, and says
// whether the connection is to itself.
void ConnectAndCheck(int fd, const SocketAddress& to, bool& self_connection) {
  if (connect(fd, to.sockaddr(), to.length()) != 0) {
    ASSERT_EQ(errno, EINPROGRESS);
    struct pollfd pfd = {fd, POLLOUT, 0};
    ASSERT_EQ(poll(&pfd, 1, 5000), 1);
    ASSERT_TRUE(SocketError(fd).ok());
  }
  auto local = SocketAddress::LocalOf(fd);
  auto peer = SocketAddress::PeerOf(fd);
  ASSERT_TRUE(local.ok() && peer.ok());
  self_connection = IsSelfConnection(*local, *peer);
}

TEST(IsSelfConnection, ASocketConnectedToItsOwnPortIs) {
  auto fd = CreateStreamSocket(AF_INET);
  ASSERT_TRUE(fd.ok()) << fd.status();
  auto any = SocketAddress::Parse("127.0.0.1:0");
  ASSERT_TRUE(any.ok());
  ASSERT_EQ(bind(fd->get(), any->sockaddr(), any->length()), 0);
  auto self = SocketAddress::LocalOf(fd->get());
  ASSERT_TRUE(self.ok());
  // A TCP simultaneous open with itself: what a dial to a port nobody
  // listens on gets when the kernel picks that port as the source.
  bool self_connection = false;
  ConnectAndCheck(fd->get(), *self, self_connection);
  EXPECT_TRUE(self_connection);
}

TEST(IsSelfConnection, AConnectionToAListenerIsNot) {
  auto any = SocketAddress::Parse("127.0.0.1:0");
  ASSERT_TRUE(any.ok());
  auto listener = Listen(*any, ListenOptions());
  ASSERT_TRUE(listener.ok()) << listener.status();
  auto address = SocketAddress::LocalOf(listener->get());
  ASSERT_TRUE(address.ok());
  auto fd = CreateStreamSocket(AF_INET);
  ASSERT_TRUE(fd.ok());
  bool self_connection = true;
  ConnectAndCheck(fd->get(), *address, self_connection);
  EXPECT_FALSE(self_connection);
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
