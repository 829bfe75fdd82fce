#include "netpoll/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/testing/blocking_client.h"

namespace netpoll {
namespace {

using testing::BlockingClient;
using testing::CountOpenFds;

std::shared_ptr<ConnectionCallbacks> EchoCallbacks() {
  auto callbacks = std::make_shared<ConnectionCallbacks>();
  callbacks->on_request = [](const ConnectionPtr& conn, LinkBuffer& input) {
    (void)conn->Write(std::move(*input.Slice(input.Len())));
  };
  return callbacks;
}

std::unique_ptr<Server> StartEchoServer(absl::string_view address, ServerOptions options = {}) {
  options.num_loops = options.num_loops == 0 ? 2 : options.num_loops;
  options.callbacks = EchoCallbacks();
  auto server = Server::Create(options);
  EXPECT_TRUE(server.ok()) << server.status();
  absl::Status started = (*server)->Start(*SocketAddress::Parse(address));
  EXPECT_TRUE(started.ok()) << started;
  return std::move(*server);
}

void ExpectEcho(const SocketAddress& address, const std::string& message) {
  auto client = BlockingClient::Connect(address);
  ASSERT_TRUE(client.ok()) << client.status();
  ASSERT_TRUE(client->SendAll(message).ok());
  auto echoed = client->ReadExactly(message.size());
  ASSERT_TRUE(echoed.ok()) << echoed.status();
  EXPECT_EQ(*echoed, message);
}

TEST(Server, EchoesOverIpv4WithEphemeralPort) {
  auto server = StartEchoServer("127.0.0.1:0");
  EXPECT_NE(server->listen_address().port(), 0);
  ExpectEcho(server->listen_address(), "hello netpoll");
  ExpectEcho(server->listen_address(), std::string(1 << 20, 'x'));  // many reads and writes
}

TEST(Server, EchoesOverIpv6) {
  auto server = StartEchoServer("[::1]:0");
  ExpectEcho(server->listen_address(), "hello v6");
}

TEST(Server, EchoesOverUnixDomainSocket) {
  // sun_path holds 108 bytes: the test temp dir is often longer.
  std::string path = absl::StrCat("/tmp/np_server_test_", getpid(), ".sock");
  auto server = StartEchoServer(absl::StrCat("unix:", path));
  ExpectEcho(server->listen_address(), "hello unix");
}

TEST(Server, ReusePortListenersOnEveryLoopAllAccept) {
  ServerOptions options;
  options.reuse_port = true;
  options.num_loops = 2;
  auto server = StartEchoServer("127.0.0.1:0", options);
  for (int i = 0; i < 20; ++i) ExpectEcho(server->listen_address(), absl::StrCat("msg ", i));
  EXPECT_EQ(server->Stats().connections_accepted, 20);
}

TEST(Server, CountsConnectionsAndBytes) {
  auto server = StartEchoServer("127.0.0.1:0");
  ExpectEcho(server->listen_address(), "12345");
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server->Stats().connections_closed < 1 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  TransportStatsSnapshot stats = server->Stats();
  EXPECT_EQ(stats.connections_accepted, 1);
  EXPECT_EQ(stats.connections_closed, 1);
  EXPECT_EQ(stats.connections_active, 0);
  EXPECT_EQ(stats.bytes_in, 5);
  EXPECT_EQ(stats.bytes_out, 5);
}

TEST(Server, TenThousandConnectionsOpenedAndClosedLeaveNoFdOpen) {
  auto server = StartEchoServer("127.0.0.1:0");
  // Warm up lazily created fds (resolver, block caches, ...).
  ExpectEcho(server->listen_address(), "warm");
  absl::SleepFor(absl::Milliseconds(50));
  int before = CountOpenFds();
  constexpr int kConnections = 10000;
  constexpr int kBatch = 200;
  for (int i = 0; i < kConnections; i += kBatch) {
    std::vector<BlockingClient> clients;
    for (int j = 0; j < kBatch; ++j) {
      auto client = BlockingClient::Connect(server->listen_address());
      ASSERT_TRUE(client.ok()) << client.status();
      clients.push_back(std::move(*client));
    }
    ASSERT_TRUE(clients.back().SendAll("x").ok());
    ASSERT_TRUE(clients.back().ReadExactly(1).ok());
  }
  absl::Time deadline = absl::Now() + absl::Seconds(20);
  while (server->connection_count() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(server->connection_count(), 0u);
  EXPECT_EQ(CountOpenFds(), before);
  EXPECT_EQ(server->Stats().connections_accepted, kConnections + 1);
}

TEST(Server, SurvivesRunningOutOfFileDescriptors) {
  auto server = StartEchoServer("127.0.0.1:0");
  ExpectEcho(server->listen_address(), "before");
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(CountOpenFds() + 40);
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  // Clients (in this process) and accepted sockets share the limit; open until
  // accept hits EMFILE.
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 60; ++i) {
    auto client = BlockingClient::Connect(server->listen_address(), absl::Seconds(1));
    if (!client.ok()) break;
    clients.push_back(std::move(*client));
  }
  absl::Time deadline = absl::Now() + absl::Seconds(5);
  while (server->Stats().accept_errors == 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_GT(server->Stats().accept_errors, 0);
  clients.clear();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  // The listener is still there and accepting.
  absl::SleepFor(absl::Milliseconds(200));
  ExpectEcho(server->listen_address(), "after");
}

TEST(Server, ShutdownClosesIdleConnectionsAndRunsEveryCloseCallbackOnce) {
  auto options = ServerOptions();
  options.num_loops = 2;
  auto callbacks = EchoCallbacks();
  std::atomic<int> disconnects{0};
  callbacks->on_disconnect = [&](const ConnectionPtr&, const absl::Status&) { disconnects++; };
  options.callbacks = callbacks;
  auto server = Server::Create(options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 10; ++i) {
    auto client = BlockingClient::Connect((*server)->listen_address());
    ASSERT_TRUE(client.ok());
    ASSERT_TRUE(client->SendAll("x").ok());
    ASSERT_TRUE(client->ReadExactly(1).ok());
    clients.push_back(std::move(*client));
  }
  (*server)->Shutdown(absl::Seconds(2));
  EXPECT_EQ(disconnects.load(), 10);
  for (auto& client : clients) EXPECT_TRUE(client.WaitForClose(absl::Seconds(2)));
  EXPECT_FALSE(BlockingClient::Connect((*server)->listen_address(), absl::Seconds(1)).ok());
}

TEST(Server, ShutdownForceClosesBusyConnectionsAtTheDeadline) {
  auto options = ServerOptions();
  options.num_loops = 1;
  options.callbacks = std::make_shared<ConnectionCallbacks>();  // consumes nothing
  auto server = Server::Create(options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  auto client = BlockingClient::Connect((*server)->listen_address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->SendAll("partial frame").ok());  // stays buffered: busy
  absl::SleepFor(absl::Milliseconds(50));
  absl::Time start = absl::Now();
  (*server)->Shutdown(absl::Milliseconds(200));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(2)));
}

}  // namespace
}  // namespace netpoll
