#include "netpoll/dialer.h"

#include <sys/socket.h>

#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/server.h"
#include "netpoll/socket.h"

namespace netpoll {
namespace {

class DialerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EventLoopGroupOptions options;
    options.num_loops = 1;
    group_ = std::move(*EventLoopGroup::Create(options));
  }
  std::unique_ptr<EventLoopGroup> group_;
};

TEST_F(DialerTest, DialsAServerAndExchangesBytes) {
  ServerOptions server_options;
  server_options.num_loops = 1;
  server_options.callbacks->on_request = [](const ConnectionPtr& conn, LinkBuffer& in) {
    (void)conn->Write(std::move(*in.Slice(in.Len())));
  };
  auto server = Server::Create(server_options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());

  auto callbacks = std::make_shared<ConnectionCallbacks>();
  Notification got_reply;
  callbacks->on_request = [&](const ConnectionPtr&, LinkBuffer& in) {
    if (in.Len() >= 5) got_reply.Notify();
  };
  DialOptions options;
  options.callbacks = callbacks;
  auto conn = Dialer::DialSync(group_->loop(0), (*server)->listen_address().ToString(), options);
  ASSERT_TRUE(conn.ok()) << conn.status();
  EXPECT_TRUE((*conn)->active());
  ASSERT_TRUE((*conn)->Write("hello").ok());
  EXPECT_TRUE(got_reply.WaitForNotificationWithTimeout(absl::Seconds(5)));
  (*conn)->Close();
}

TEST_F(DialerTest, ResolvesNamesOffTheLoopThread) {
  auto listener = Listen(*SocketAddress::Parse("127.0.0.1:0"), {});
  ASSERT_TRUE(listener.ok());
  int port = SocketAddress::LocalOf(listener->get())->port();
  auto conn = Dialer::DialSync(group_->loop(0), "localhost:" + std::to_string(port), {});
  // localhost may resolve to ::1 first on some machines; either it connects
  // or fails cleanly, never blocks the loop.
  if (conn.ok()) {
    EXPECT_TRUE((*conn)->active());
    (*conn)->Close();
  } else {
    EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
  }
}

TEST_F(DialerTest, RefusedConnectionIsUnavailable) {
  // Bind a port, then close it: nothing listens there.
  auto fd = Listen(*SocketAddress::Parse("127.0.0.1:0"), {});
  ASSERT_TRUE(fd.ok());
  std::string address = SocketAddress::LocalOf(fd->get())->ToString();
  fd->reset();
  auto conn = Dialer::DialSync(group_->loop(0), address, {});
  EXPECT_TRUE(absl::IsUnavailable(conn.status())) << conn.status();
}

TEST_F(DialerTest, ConnectTimesOutWhenTheBacklogIsFull) {
  ListenOptions listen_options;
  listen_options.backlog = 0;
  auto listener = Listen(*SocketAddress::Parse("127.0.0.1:0"), listen_options);
  ASSERT_TRUE(listener.ok());
  std::string address = SocketAddress::LocalOf(listener->get())->ToString();
  // Fill the backlog (never accepted) so further SYNs are dropped.
  std::vector<ConnectionPtr> fillers;
  DialOptions options;
  options.timeout = absl::Milliseconds(200);
  absl::Status last;
  for (int i = 0; i < 8; ++i) {
    auto conn = Dialer::DialSync(group_->loop(0), address, options);
    if (!conn.ok()) {
      last = conn.status();
      break;
    }
    fillers.push_back(*conn);
  }
  EXPECT_TRUE(absl::IsDeadlineExceeded(last)) << last;
  // A connection still open when its loop stops keeps itself alive: close.
  for (auto& conn : fillers) conn->Close();
}

TEST_F(DialerTest, BadAddressFailsWithoutHanging) {
  auto conn = Dialer::DialSync(group_->loop(0), "no-such-host.invalid:80", {});
  EXPECT_FALSE(conn.ok());
}

}  // namespace
}  // namespace netpoll
