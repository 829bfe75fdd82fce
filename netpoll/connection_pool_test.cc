#include "netpoll/connection_pool.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/socket.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/test_certs.h"
#include "netpoll/testing/wait.h"
#include "netpoll/tls_context.h"

namespace netpoll {
namespace {

using Lease = ConnectionPool::Lease;

using testing::WaitFor;

// An echo server that remembers its connections (so a test can close them).
class EchoServer {
 public:
  EchoServer() {
    ServerOptions options;
    options.num_loops = 1;
    options.callbacks->on_connect = [this](const ConnectionPtr& conn) {
      MutexLock lock(&mu_);
      conns_.push_back(conn);
    };
    options.callbacks->on_request = [](const ConnectionPtr& conn, LinkBuffer& in) {
      (void)conn->Write(std::move(*in.Slice(in.Len())));
    };
    server_ = std::move(*Server::Create(options));
    NP_CHECK(server_->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
    address_ = server_->listen_address().ToString();
  }
  ~EchoServer() {
    {
      MutexLock lock(&mu_);
      conns_.clear();
    }
    server_->Shutdown(absl::ZeroDuration());
  }
  const std::string& address() const { return address_; }
  size_t connection_count() { return server_->connection_count(); }
  // Waits until the server has accepted `expected` connections, closes them
  // all and waits until they are gone.
  void CloseAll(size_t expected) {
    NP_CHECK(WaitFor([&] {
      MutexLock lock(&mu_);
      return conns_.size() == expected;
    }));
    std::vector<ConnectionPtr> conns;
    {
      MutexLock lock(&mu_);
      conns.swap(conns_);
    }
    for (auto& conn : conns) conn->Close();
    NP_CHECK(WaitFor([this] { return connection_count() == 0; }));
  }

 private:
  std::unique_ptr<Server> server_;
  std::string address_;
  Mutex mu_;
  std::vector<ConnectionPtr> conns_ ABSL_GUARDED_BY(mu_);
};

class ConnectionPoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    EventLoopGroupOptions options;
    options.num_loops = 2;
    options.name = "pool";
    group_ = std::move(*EventLoopGroup::Create(options));
  }
  void TearDown() override {
    pool_.reset();
    group_->Stop();
  }

  ConnectionPoolOptions Options() {
    ConnectionPoolOptions options;
    options.group = group_.get();
    return options;
  }
  // For the min_idle warm-up tests: `cap` connections per address at most,
  // maintenance (and so warm-up) every `interval`.
  ConnectionPoolOptions WarmUpOptions(size_t min_idle, size_t cap, absl::Duration interval) {
    ConnectionPoolOptions options = Options();
    options.min_idle = min_idle;
    options.max_active_per_address = cap;
    options.maintenance_interval = interval;
    return options;
  }
  void CreatePool(const ConnectionPoolOptions& options) {
    auto pool = ConnectionPool::Create(options);
    ASSERT_TRUE(pool.ok()) << pool.status();
    pool_ = std::move(*pool);
  }
  absl::StatusOr<Lease> Acquire(absl::Duration timeout = absl::Seconds(5)) {
    return pool_->AcquireSync(server_.address(), absl::Now() + timeout);
  }
  // Sends `message` on the lease's connection; the echo arrives through the
  // connection's on_request, so here we only check the write is accepted.
  ConnectionPoolStats Stats() { return pool_->Stats(server_.address()); }

  EchoServer server_;
  std::unique_ptr<EventLoopGroup> group_;
  std::unique_ptr<ConnectionPool> pool_;
};

TEST_F(ConnectionPoolTest, SecondAcquireReusesTheReleasedConnection) {
  CreatePool(Options());
  auto first = Acquire();
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->reused());
  uint64_t id = first->connection()->id();
  first->Release();
  EXPECT_EQ(Stats().idle, 1);

  auto second = Acquire();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->connection()->id(), id);
  EXPECT_TRUE(second->reused());
  EXPECT_TRUE((*second)->active());
  ConnectionPoolStats stats = Stats();
  EXPECT_EQ(stats.dials, 1);
  EXPECT_EQ(stats.reused, 1);
  EXPECT_EQ(stats.active, 1);
  EXPECT_EQ(stats.idle, 0);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 1; }));
}

TEST_F(ConnectionPoolTest, LeaseHolderGetsItsConnectionsInputThroughTheContext) {
  // The per-connection slot: on_prepare creates it, on_request fills it, the
  // lease holder reads it.
  struct Slot {
    Mutex mu;
    std::string received ABSL_GUARDED_BY(mu);
    std::string Received() {
      MutexLock lock(&mu);
      return received;
    }
  };
  auto callbacks = std::make_shared<ConnectionCallbacks>();
  callbacks->on_prepare = [](Connection&) -> absl::StatusOr<std::any> {
    return std::any(std::make_shared<Slot>());
  };
  callbacks->on_request = [](const ConnectionPtr& conn, LinkBuffer& in) {
    auto& slot = std::any_cast<std::shared_ptr<Slot>&>(conn->context());
    MutexLock lock(&slot->mu);
    slot->received += *in.ReadString(in.Len());
  };
  ConnectionPoolOptions options = Options();
  options.callbacks = callbacks;
  std::atomic<int> resets{0};
  options.on_release = [&resets](const ConnectionPtr&, const std::any& context) {
    auto slot = std::any_cast<std::shared_ptr<Slot>>(context);
    MutexLock lock(&slot->mu);
    slot->received.clear();
    resets++;
    return true;
  };
  CreatePool(options);
  {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_TRUE((*lease)->Write("hello").ok());
    const auto& slot = lease->context<std::shared_ptr<Slot>>();
    EXPECT_TRUE(WaitFor([&] { return slot->Received() == "hello"; }));
  }
  EXPECT_EQ(resets.load(), 1);
  auto lease = Acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->reused());
  EXPECT_EQ(lease->context<std::shared_ptr<Slot>>()->Received(), "");
}

TEST_F(ConnectionPoolTest, ConnectionCountNeverExceedsTheCapUnderConcurrency) {
  constexpr size_t kCap = 3;
  constexpr int kThreads = 8;
  constexpr int kIterations = 40;
  ConnectionPoolOptions options = Options();
  options.max_active_per_address = kCap;
  options.max_waiters = kThreads;
  CreatePool(options);

  std::atomic<bool> stop{false};
  std::atomic<size_t> max_server_conns{0};
  std::atomic<int64_t> max_pool_conns{0};
  std::thread monitor([&] {
    while (!stop.load()) {
      size_t n = server_.connection_count();
      if (n > max_server_conns.load()) max_server_conns.store(n);
      ConnectionPoolStats s = Stats();
      int64_t total = s.idle + s.active + s.dialing;
      if (total > max_pool_conns.load()) max_pool_conns.store(total);
      absl::SleepFor(absl::Microseconds(200));  // the sampling period
    }
  });
  std::atomic<int> in_use{0};
  std::atomic<int> max_in_use{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        auto lease = Acquire(absl::Seconds(10));
        if (!lease.ok()) {
          failures++;
          continue;
        }
        int now = ++in_use;
        int seen = max_in_use.load();
        while (now > seen && !max_in_use.compare_exchange_weak(seen, now)) {
        }
        if (!(*lease)->Write("x").ok()) failures++;
        absl::SleepFor(absl::Microseconds(100));  // holds the lease: contention
        --in_use;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  stop = true;
  monitor.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_LE(max_in_use.load(), static_cast<int>(kCap));
  EXPECT_GE(max_in_use.load(), 2);  // there was contention
  EXPECT_LE(max_server_conns.load(), kCap);
  EXPECT_LE(max_pool_conns.load(), static_cast<int64_t>(kCap));
  ConnectionPoolStats stats = Stats();
  EXPECT_LE(stats.dials, static_cast<int64_t>(kCap));
  EXPECT_GT(stats.waits, 0);
  EXPECT_LE(server_.connection_count(), kCap);
}

TEST_F(ConnectionPoolTest, WaitersAreServedInOrderWhenALeaseIsReleased) {
  ConnectionPoolOptions options = Options();
  options.max_active_per_address = 1;
  CreatePool(options);
  auto held = Acquire();
  ASSERT_TRUE(held.ok());

  Mutex mu;
  std::vector<int> order;
  Notification all_served;
  constexpr int kWaiters = 4;
  for (int i = 0; i < kWaiters; ++i) {
    pool_->Acquire(server_.address(), absl::Now() + absl::Seconds(10),
                   [&, i](absl::StatusOr<Lease> lease) {
                     ASSERT_TRUE(lease.ok()) << lease.status();
                     MutexLock lock(&mu);
                     order.push_back(i);
                     if (order.size() == kWaiters) all_served.Notify();
                     // The lease is released here, which serves the next waiter.
                   });
    ASSERT_TRUE(WaitFor([&] { return Stats().waiting == i + 1; }));
  }
  EXPECT_EQ(Stats().waits, kWaiters);
  held->Release();
  ASSERT_TRUE(all_served.WaitForNotificationWithTimeout(absl::Seconds(5)));
  MutexLock lock(&mu);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(Stats().dials, 1);
}

TEST_F(ConnectionPoolTest, DialTimeoutIsUnavailableNotTheWaitersDeadline) {
  // A listener that never accepts: the kernel completes the TCP handshake,
  // and the TLS handshake then waits for an answer that never comes.
  absl::StatusOr<UniqueFd> listener = Listen(*SocketAddress::Parse("127.0.0.1:0"),
                                             ListenOptions{.backlog = 16, .reuse_port = false});
  ASSERT_TRUE(listener.ok()) << listener.status();
  struct sockaddr_in bound = {};
  socklen_t length = sizeof(bound);
  ASSERT_EQ(::getsockname(listener->get(), reinterpret_cast<struct sockaddr*>(&bound), &length), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(bound.sin_port));
  absl::StatusOr<std::unique_ptr<testing::TestCa>> ca = testing::TestCa::Create("pool CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  TlsClientOptions tls;
  tls.ca_pem = (*ca)->cert_pem();
  ConnectionPoolOptions options = Options();
  options.connection.tls = *TlsContext::NewClient(tls);
  options.dial_timeout = absl::Milliseconds(200);
  CreatePool(options);
  auto lease = pool_->AcquireSync(address, absl::Now() + absl::Seconds(20));
  ASSERT_FALSE(lease.ok());
  EXPECT_TRUE(absl::IsUnavailable(lease.status())) << lease.status();
  EXPECT_TRUE(absl::StrContains(lease.status().message(), "timed out")) << lease.status();
}

TEST_F(ConnectionPoolTest, WaitingPastTheDeadlineIsDeadlineExceeded) {
  ConnectionPoolOptions options = Options();
  options.max_active_per_address = 1;
  CreatePool(options);
  auto held = Acquire();
  ASSERT_TRUE(held.ok());
  absl::Time start = absl::Now();
  auto second = Acquire(absl::Milliseconds(100));
  EXPECT_TRUE(absl::IsDeadlineExceeded(second.status())) << second.status();
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(95));
  ConnectionPoolStats stats = Stats();
  EXPECT_EQ(stats.wait_timeouts, 1);
  EXPECT_EQ(stats.waiting, 0);
  // The held lease is unaffected and the pool still works after it returns.
  held->Release();
  EXPECT_TRUE(Acquire().ok());
}

TEST_F(ConnectionPoolTest, FullWaitQueueIsResourceExhausted) {
  ConnectionPoolOptions options = Options();
  options.max_active_per_address = 1;
  options.max_waiters = 1;
  CreatePool(options);
  auto held = Acquire();
  ASSERT_TRUE(held.ok());
  Notification served;
  pool_->Acquire(server_.address(), absl::Now() + absl::Seconds(10),
                 [&](absl::StatusOr<Lease> lease) {
                   EXPECT_TRUE(lease.ok()) << lease.status();
                   served.Notify();
                 });
  ASSERT_TRUE(WaitFor([&] { return Stats().waiting == 1; }));
  absl::Time start = absl::Now();
  auto rejected = Acquire(absl::Seconds(10));
  EXPECT_TRUE(absl::IsResourceExhausted(rejected.status())) << rejected.status();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1));  // did not wait
  EXPECT_EQ(Stats().rejected, 1);
  held->Release();
  EXPECT_TRUE(served.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST_F(ConnectionPoolTest, IdleConnectionsAreClosedAfterTheIdleTimeout) {
  ConnectionPoolOptions options = Options();
  options.idle_timeout = absl::Milliseconds(150);
  CreatePool(options);
  {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok());
  }
  absl::Time released = absl::Now();
  EXPECT_EQ(Stats().idle, 1);
  ASSERT_TRUE(WaitFor([&] { return Stats().idle == 0; }));
  EXPECT_GE(absl::Now() - released, absl::Milliseconds(140));
  EXPECT_EQ(Stats().evicted, 1);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 0; }));
  // A new acquire dials again.
  auto lease = Acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->reused());
  EXPECT_EQ(Stats().dials, 2);
}

TEST_F(ConnectionPoolTest, MinIdleWarmsUpConnectionsInTheBackground) {
  CreatePool(WarmUpOptions(/*min_idle=*/2, /*cap=*/3, absl::Milliseconds(20)));
  pool_->WarmUp(server_.address());
  ASSERT_TRUE(WaitFor([&] { return Stats().idle == 2; }));
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 2; }));
  // Taking one makes the pool dial another to keep two idle (3 = the cap).
  auto lease = Acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->reused());
  ASSERT_TRUE(WaitFor([&] { return Stats().idle == 2; }));
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 3; }));
  auto second = Acquire();
  ASSERT_TRUE(second.ok());
  // At the cap no more warm-up dials start. Five maintenance intervals give a
  // wrong dial the time to show; a correct pool passes whatever the wait.
  absl::SleepFor(absl::Milliseconds(100));
  EXPECT_EQ(Stats().dials, 3);
  EXPECT_EQ(server_.connection_count(), 3u);
}

// A dialed connection stays counted as "dialing" until the pool has placed
// it, so the maintenance timer (here every millisecond, on another loop)
// never sees one connection too few and dials past min_idle.
TEST_F(ConnectionPoolTest, MinIdleWarmUpNeverOvershootsWhileDialsComplete) {
  CreatePool(WarmUpOptions(/*min_idle=*/4, /*cap=*/64, absl::Milliseconds(1)));
  for (int round = 0; round < 20; ++round) {
    pool_->WarmUp(server_.address());
    ASSERT_TRUE(WaitFor([&] { return Stats().idle == 4; })) << "round " << round;
    // Empty the idle list so that the next round warms up from zero.
    std::vector<Lease> leases;
    for (int i = 0; i < 4; ++i) {
      auto lease = Acquire();
      ASSERT_TRUE(lease.ok()) << lease.status();
      leases.push_back(std::move(*lease));
    }
    for (auto& lease : leases) {
      lease.MarkBroken();
      lease.Release();
    }
    ASSERT_TRUE(WaitFor([&] { return Stats().active == 0; }));
  }
  // The last round's warm-up refills to exactly min_idle.
  EXPECT_TRUE(WaitFor([&] {
    ConnectionPoolStats stats = Stats();
    return stats.idle == 4 && stats.dialing == 0;
  }));
  EXPECT_EQ(Stats().idle, 4);
}

TEST_F(ConnectionPoolTest, ConnectionClosedByTheServerWhileIdleIsNeverHandedOut) {
  CreatePool(Options());
  uint64_t old_id;
  {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok());
    old_id = lease->connection()->id();
  }
  for (int round = 0; round < 20; ++round) {
    // The server closes the idle connection; acquire at once, before the
    // pool's close callback has had a chance to run.
    server_.CloseAll(1);
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_NE(lease->connection()->id(), old_id) << "round " << round;
    EXPECT_TRUE((*lease)->active());
    EXPECT_FALSE(lease->reused());
    old_id = lease->connection()->id();
  }
  EXPECT_EQ(Stats().dials, 21);
}

TEST_F(ConnectionPoolTest, BrokenLeaseIsClosedNotReturned) {
  CreatePool(Options());
  uint64_t id;
  {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok());
    id = lease->connection()->id();
    lease->MarkBroken();
  }
  EXPECT_EQ(Stats().idle, 0);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 0; }));
  auto lease = Acquire();
  ASSERT_TRUE(lease.ok());
  EXPECT_NE(lease->connection()->id(), id);
  EXPECT_EQ(Stats().dials, 2);
}

TEST_F(ConnectionPoolTest, MaxIdleGlobalIsHonored) {
  EchoServer other;
  ConnectionPoolOptions options = Options();
  options.max_idle_global = 1;
  CreatePool(options);
  auto a = pool_->AcquireSync(server_.address(), absl::Now() + absl::Seconds(5));
  auto b = pool_->AcquireSync(other.address(), absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(a.ok() && b.ok());
  a->Release();
  b->Release();  // the global cap closes the least recently used: a's
  ConnectionPoolStats stats = pool_->Stats();
  EXPECT_EQ(stats.idle, 1);
  EXPECT_EQ(stats.evicted, 1);
  EXPECT_EQ(pool_->Stats(other.address()).idle, 1);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return other.connection_count() == 1; }));
  pool_.reset();  // before `other` goes
}

TEST_F(ConnectionPoolTest, MaxIdlePerAddressIsHonored) {
  ConnectionPoolOptions options = Options();
  options.max_idle_per_address = 2;
  CreatePool(options);
  std::vector<Lease> leases;
  for (int i = 0; i < 4; ++i) {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok());
    leases.push_back(std::move(*lease));
  }
  leases.clear();
  EXPECT_EQ(Stats().idle, 2);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 2; }));
}

// Each release beyond the cap retires exactly one connection, the oldest
// idle one, also for many releases in a row.
TEST_F(ConnectionPoolTest, ManyReleasesBeyondMaxIdleEachRetireTheOldest) {
  constexpr int kLeases = 100;
  ConnectionPoolOptions options = Options();
  options.max_idle_per_address = 1;
  options.max_active_per_address = kLeases;
  CreatePool(options);
  std::vector<Lease> leases;
  for (int i = 0; i < kLeases; ++i) {
    auto lease = Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    leases.push_back(std::move(*lease));
  }
  for (Lease& lease : leases) lease.Release();
  EXPECT_EQ(Stats().idle, 1);
  EXPECT_EQ(Stats().evicted, kLeases - 1);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 1; }));
}

TEST_F(ConnectionPoolTest, DialFailureReachesTheWaiter) {
  auto listener = Listen(*SocketAddress::Parse("127.0.0.1:0"), {});
  ASSERT_TRUE(listener.ok());
  std::string address = SocketAddress::LocalOf(listener->get())->ToString();
  listener->reset();  // nothing listens there now
  CreatePool(Options());
  auto lease = pool_->AcquireSync(address, absl::Now() + absl::Seconds(5));
  EXPECT_TRUE(absl::IsUnavailable(lease.status())) << lease.status();
  ConnectionPoolStats stats = pool_->Stats(address);
  EXPECT_EQ(stats.dial_failures, 1);
  EXPECT_EQ(stats.dialing, 0);
  EXPECT_EQ(stats.waiting, 0);
}

TEST_F(ConnectionPoolTest, CallbacksRunOnALoopThreadNeverInsideAcquire) {
  CreatePool(Options());
  { ASSERT_TRUE(Acquire().ok()); }  // one idle connection, on one of the loops
  // Acquire from each loop thread: when the idle connection lives on that
  // very loop, the callback still runs only after Acquire() has returned.
  int same_thread_cases = 0;
  for (int i = 0; i < group_->size(); ++i) {
    Notification done;
    // The task itself: the callback may run on another loop before the task
    // returns, and the task's last write must not outlive this iteration's
    // variables.
    Notification task_done;
    std::atomic<bool> inside{false};
    std::atomic<bool> ran_inside{false};
    std::atomic<bool> same_thread{false};
    std::atomic<bool> on_loop{false};
    std::thread::id acquirer;
    group_->loop(i)->RunInLoop([&] {
      acquirer = std::this_thread::get_id();
      inside = true;
      pool_->Acquire(server_.address(), absl::Now() + absl::Seconds(5),
                     [&](absl::StatusOr<Lease> lease) {
                       same_thread = std::this_thread::get_id() == acquirer;
                       ran_inside = same_thread.load() && inside.load();
                       on_loop = lease.ok() && (*lease)->loop()->IsInLoopThread();
                       done.Notify();
                     });
      inside = false;
      task_done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    ASSERT_TRUE(task_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
    EXPECT_FALSE(ran_inside.load());
    EXPECT_TRUE(on_loop.load());
    if (same_thread.load()) ++same_thread_cases;
  }
  EXPECT_GE(same_thread_cases, 1);
}

TEST_F(ConnectionPoolTest, DestroyingThePoolClosesEverythingAndCancelsWaiters) {
  EchoServer other;
  int fds_before = testing::CountOpenFds();
  ConnectionPoolOptions options = Options();
  options.max_active_per_address = 2;
  CreatePool(options);
  // server_: one leased, one idle; other: two leased and a waiter.
  auto leased = Acquire();
  ASSERT_TRUE(leased.ok());
  { ASSERT_TRUE(Acquire().ok()); }
  std::vector<Lease> others;
  for (int i = 0; i < 2; ++i) {
    auto lease = pool_->AcquireSync(other.address(), absl::Now() + absl::Seconds(5));
    ASSERT_TRUE(lease.ok());
    others.push_back(std::move(*lease));
  }
  Notification cancelled;
  pool_->Acquire(other.address(), absl::InfiniteFuture(), [&](absl::StatusOr<Lease> lease) {
    EXPECT_TRUE(absl::IsCancelled(lease.status())) << lease.status();
    cancelled.Notify();
  });
  ASSERT_TRUE(WaitFor([&] { return pool_->Stats(other.address()).waiting == 1; }));
  EXPECT_EQ(Stats().idle, 1);
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 2; }));
  EXPECT_TRUE(WaitFor([&] { return other.connection_count() == 2; }));

  pool_.reset();
  EXPECT_TRUE(cancelled.HasBeenNotified());  // before the destructor returned
  EXPECT_FALSE((*leased)->active());
  leased->Release();  // releasing after the pool is gone is harmless
  others.clear();
  EXPECT_TRUE(WaitFor([&] { return server_.connection_count() == 0; }));
  EXPECT_TRUE(WaitFor([&] { return other.connection_count() == 0; }));
  EXPECT_EQ(testing::CountOpenFds(), fds_before);
}

}  // namespace
}  // namespace netpoll
