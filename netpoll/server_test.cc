#include "netpoll/server.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"

namespace netpoll {
namespace {

using testing::BlockingClient;
using testing::CountOpenFds;
using testing::WaitFor;

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
  ASSERT_TRUE(WaitFor([&] { return server->Stats().connections_closed >= 1; }));
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
  ASSERT_TRUE(WaitFor([&] { return server->connection_count() == 0; }));  // its fd is closed
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
  EXPECT_TRUE(WaitFor([&] { return server->connection_count() == 0; }));
  EXPECT_EQ(CountOpenFds(), before);
  EXPECT_EQ(server->Stats().connections_accepted, kConnections + 1);
}

TEST(Server, SurvivesRunningOutOfFileDescriptors) {
  auto server = StartEchoServer("127.0.0.1:0");
  ExpectEcho(server->listen_address(), "before");
  struct rlimit saved;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
  struct rlimit low = saved;
  low.rlim_cur = static_cast<rlim_t>(CountOpenFds()) + 40;
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &low), 0);
  // Clients (in this process) and accepted sockets share the limit; open until
  // accept hits EMFILE.
  std::vector<BlockingClient> clients;
  for (int i = 0; i < 60; ++i) {
    auto client = BlockingClient::Connect(server->listen_address(), absl::Seconds(1));
    if (!client.ok()) break;
    clients.push_back(std::move(*client));
  }
  EXPECT_TRUE(WaitFor([&] { return server->Stats().accept_errors > 0; }));
  clients.clear();
  ASSERT_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
  // The listener is still there and accepting (after its accept backoff: the
  // kernel queues the connection meanwhile, and the client waits for the echo).
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
  ASSERT_TRUE(WaitFor([&] { return (*server)->Stats().bytes_in == 13; }));
  absl::Time start = absl::Now();
  (*server)->Shutdown(absl::Milliseconds(200));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(190));
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(2)));
}

// ------------------------------------------------------------ spreading

// A server whose callbacks record the loop of every connection they see.
class LoopSpreadTest : public ::testing::Test {
 protected:
  void StartServer(int num_loops, LoadBalancePolicy policy) {
    auto callbacks = EchoCallbacks();
    callbacks->on_connect = [this](const ConnectionPtr& conn) {
      MutexLock lock(&mu_);
      loops_.push_back(conn->loop());
    };
    ServerOptions options;
    options.num_loops = num_loops;
    options.policy = policy;
    options.callbacks = callbacks;
    auto server = Server::Create(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  }

  // Connects one client and waits until its connection runs on a loop (so
  // the next accept sees it in the loops' counts); returns that loop's index.
  int ConnectOne() {
    size_t seen;
    {
      MutexLock lock(&mu_);
      seen = loops_.size();
    }
    auto client = BlockingClient::Connect(server_->listen_address());
    EXPECT_TRUE(client.ok()) << client.status();
    if (!client.ok()) return -1;
    clients_.push_back(std::move(*client));
    EXPECT_TRUE(WaitFor([&] {
      MutexLock lock(&mu_);
      return loops_.size() > seen;
    }));
    MutexLock lock(&mu_);
    if (loops_.size() <= seen) return -1;
    for (int i = 0; i < server_->group()->size(); ++i) {
      if (server_->group()->loop(i) == loops_[seen]) return i;
    }
    return -1;
  }

  std::unique_ptr<Server> server_;
  std::vector<BlockingClient> clients_;
  Mutex mu_;
  std::vector<EventLoop*> loops_ ABSL_GUARDED_BY(mu_);  // per connection, in accept order
};

TEST_F(LoopSpreadTest, LeastConnectionsSpreadsConnectionsEvenlyOverTheLoops) {
  constexpr int kLoops = 3;
  StartServer(kLoops, LoadBalancePolicy::kLeastConnections);
  std::vector<int> per_loop(kLoops, 0);
  for (int i = 0; i < 4 * kLoops; ++i) {
    int loop = ConnectOne();
    ASSERT_GE(loop, 0);
    ++per_loop[loop];
  }
  for (int i = 0; i < kLoops; ++i) EXPECT_EQ(per_loop[i], 4) << "loop " << i;
  for (int i = 0; i < kLoops; ++i) {
    EXPECT_EQ(server_->group()->loop(i)->stats().connections_active.load(), 4) << "loop " << i;
  }
}

// The choice follows the loops' current load, not the accept order: after the
// connections of one loop close, the next connections all go there.
TEST_F(LoopSpreadTest, LeastConnectionsFillsTheLoopWhoseConnectionsClosed) {
  StartServer(2, LoadBalancePolicy::kLeastConnections);
  std::vector<int> first;
  for (int i = 0; i < 4; ++i) first.push_back(ConnectOne());
  ASSERT_EQ(std::count(first.begin(), first.end(), 1), 2);
  // Close the two clients whose connections run on loop 1.
  std::vector<BlockingClient> kept;
  for (size_t i = 0; i < first.size(); ++i) {
    if (first[i] != 1) kept.push_back(std::move(clients_[i]));
  }
  clients_ = std::move(kept);
  EventLoop* loop1 = server_->group()->loop(1);
  ASSERT_TRUE(WaitFor([&] { return loop1->stats().connections_active.load() == 0; }));
  EXPECT_EQ(ConnectOne(), 1);
  EXPECT_EQ(ConnectOne(), 1);
  EXPECT_EQ(loop1->stats().connections_active.load(), 2);
  EXPECT_EQ(server_->group()->loop(0)->stats().connections_active.load(), 2);
}

TEST_F(LoopSpreadTest, RoundRobinTakesTheLoopsInTurn) {
  constexpr int kLoops = 3;
  StartServer(kLoops, LoadBalancePolicy::kRoundRobin);
  std::vector<int> order;
  for (int i = 0; i < 2 * kLoops; ++i) order.push_back(ConnectOne());
  for (int i = 0; i < 2 * kLoops; ++i) {
    EXPECT_EQ(order[i], (order[0] + i) % kLoops) << "connection " << i;
  }
}

}  // namespace
}  // namespace netpoll
