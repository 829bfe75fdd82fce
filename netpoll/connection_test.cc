#include "netpoll/connection.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/memory_budget.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/testing/blocking_client.h"
#include "netpoll/testing/wait.h"

namespace netpoll {
namespace {

using testing::BlockingClient;
using testing::WaitFor;

// Returns once `loop` has finished what it was doing when called: the turn in
// progress (with the tasks it queued) and the next one, whose epoll_wait
// reports any socket that was ready before the call. Then a counter the loop
// bumps after a writev is final, and input that arrived before the call
// would have been delivered (unless reading is paused).
void DrainLoop(EventLoop* loop) {
  for (int round = 0; round < 2; ++round) {
    Notification done;
    loop->QueueInLoop([&] { done.Notify(); });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(20)));
  }
}

// Records every callback of the server side, in order.
struct Recorder {
  Mutex mu;
  std::vector<std::string> events ABSL_GUARDED_BY(mu);
  ConnectionPtr conn ABSL_GUARDED_BY(mu);
  absl::Status reason ABSL_GUARDED_BY(mu);
  Notification connected;
  Notification disconnected;

  void Add(std::string event) {
    MutexLock lock(&mu);
    events.push_back(std::move(event));
  }
  std::vector<std::string> Events() {
    MutexLock lock(&mu);
    return events;
  }
  ConnectionPtr Conn() {
    MutexLock lock(&mu);
    return conn;
  }
  absl::Status Reason() {
    MutexLock lock(&mu);
    return reason;
  }
};

class ConnectionTest : public ::testing::Test {
 protected:
  // Starts a one-loop server whose callbacks record into recorder_.
  void StartServer(
      ConnectionOptions connection_options = {},
      const std::function<void(const ConnectionPtr&, LinkBuffer&)>& on_request = nullptr) {
    auto callbacks = std::make_shared<ConnectionCallbacks>();
    callbacks->on_prepare = [this](Connection&) -> absl::StatusOr<std::any> {
      recorder_.Add("prepare");
      return std::any(std::string("ctx"));
    };
    callbacks->on_connect = [this](const ConnectionPtr& conn) {
      recorder_.Add("connect");
      {
        MutexLock lock(&recorder_.mu);
        recorder_.conn = conn;
      }
      conn->AddCloseCallback([this] { recorder_.Add("close-callback"); });
      recorder_.connected.Notify();
    };
    callbacks->on_request =
        on_request ? on_request : [this](const ConnectionPtr& conn, LinkBuffer& input) {
          recorder_.Add("request");
          (void)conn->Write(std::move(*input.Slice(input.Len())));
        };
    callbacks->on_disconnect = [this](const ConnectionPtr&, const absl::Status& reason) {
      recorder_.Add("disconnect");
      {
        MutexLock lock(&recorder_.mu);
        recorder_.reason = reason;
      }
      recorder_.disconnected.Notify();
    };
    callbacks->on_output_watermark = [this](const ConnectionPtr&, bool high) {
      recorder_.Add(high ? "high-watermark" : "low-watermark");
    };
    ServerOptions options;
    options.num_loops = 1;
    options.connection = std::move(connection_options);
    options.callbacks = callbacks;
    auto server = Server::Create(options);
    ASSERT_TRUE(server.ok());
    server_ = std::move(*server);
    ASSERT_TRUE(server_->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  }

  BlockingClient Connect() {
    auto client = BlockingClient::Connect(server_->listen_address());
    EXPECT_TRUE(client.ok()) << client.status();
    EXPECT_TRUE(recorder_.connected.WaitForNotificationWithTimeout(absl::Seconds(5)));
    return std::move(*client);
  }

  Recorder recorder_;
  std::unique_ptr<Server> server_;
};

TEST_F(ConnectionTest, CallbacksRunInLifecycleOrderAndCloseCallbacksExactlyOnce) {
  StartServer();
  {
    BlockingClient client = Connect();
    ASSERT_TRUE(client.SendAll("ping").ok());
    ASSERT_EQ(*client.ReadExactly(4), "ping");
    ConnectionPtr conn = recorder_.Conn();
    EXPECT_EQ(std::any_cast<std::string>(conn->context()), "ctx");
    EXPECT_TRUE(conn->active());
  }  // client closes
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ConnectionPtr conn = recorder_.Conn();
  // Closing again, and adding a close callback after close, run nothing twice.
  conn->Close();
  Notification late;
  conn->AddCloseCallback([&] { late.Notify(); });
  ASSERT_TRUE(late.WaitForNotificationWithTimeout(absl::Seconds(5)));
  server_->Shutdown();
  EXPECT_EQ(recorder_.Events(), (std::vector<std::string>{"prepare", "connect", "request",
                                                          "disconnect", "close-callback"}));
  EXPECT_EQ(conn->state(), ConnectionState::kClosed);
}

TEST_F(ConnectionTest, PrepareErrorRejectsTheConnection) {
  auto callbacks = std::make_shared<ConnectionCallbacks>();
  std::atomic<int> connects{0};
  callbacks->on_prepare = [](Connection&) -> absl::StatusOr<std::any> {
    return absl::PermissionDeniedError("not allowed");
  };
  callbacks->on_connect = [&](const ConnectionPtr&) { connects++; };
  ServerOptions options;
  options.num_loops = 1;
  options.callbacks = callbacks;
  auto server = Server::Create(options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  auto client = BlockingClient::Connect((*server)->listen_address());
  ASSERT_TRUE(client.ok());
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(5)));
  EXPECT_EQ(connects.load(), 0);
}

TEST_F(ConnectionTest, WritesFromOneTurnLeaveInOneWritev) {
  ConnectionOptions options;
  options.flush_after_writes = 0;  // only at the end of the turn
  StartServer(options, [](const ConnectionPtr& conn, LinkBuffer& input) {
    (void)input.Skip(input.Len());
    for (int i = 0; i < 10; ++i) (void)conn->Write(std::string(10, static_cast<char>('a' + i)));
  });
  BlockingClient client = Connect();
  int64_t before = server_->Stats().write_calls;
  ASSERT_TRUE(client.SendAll("go").ok());
  auto reply = client.ReadExactly(100);
  ASSERT_TRUE(reply.ok());
  EXPECT_EQ(reply->substr(0, 10), std::string(10, 'a'));
  EXPECT_EQ(reply->substr(90), std::string(10, 'j'));
  // The counter is bumped on the loop just after writev returns.
  DrainLoop(recorder_.Conn()->loop());
  EXPECT_EQ(server_->Stats().write_calls - before, 1);
}

// With flush_after_writes = 4, the first four writes of a turn reach the peer
// while the handler is still running; the turn's ten writes take three
// writev calls (4 + 4 + 2).
TEST_F(ConnectionTest, EveryFlushAfterWritesWritesLeaveBeforeTheTurnEnds) {
  Notification first_four_read;
  std::atomic<bool> read_during_turn{false};
  ConnectionOptions options;
  options.flush_after_writes = 4;
  StartServer(options, [&](const ConnectionPtr& conn, LinkBuffer& input) {
    (void)input.Skip(input.Len());
    for (int i = 0; i < 4; ++i) (void)conn->Write(std::string(10, static_cast<char>('a' + i)));
    read_during_turn = first_four_read.WaitForNotificationWithTimeout(absl::Seconds(5));
    for (int i = 4; i < 10; ++i) (void)conn->Write(std::string(10, static_cast<char>('a' + i)));
  });
  BlockingClient client = Connect();
  int64_t before = server_->Stats().write_calls;
  ASSERT_TRUE(client.SendAll("go").ok());
  auto first = client.ReadExactly(40);
  first_four_read.Notify();
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->substr(30), std::string(10, 'd'));
  auto rest = client.ReadExactly(60);
  ASSERT_TRUE(rest.ok());
  EXPECT_EQ(rest->substr(50), std::string(10, 'j'));
  EXPECT_TRUE(read_during_turn.load());
  DrainLoop(recorder_.Conn()->loop());
  EXPECT_EQ(server_->Stats().write_calls - before, 3);
}

TEST_F(ConnectionTest, WritesFromManyThreadsAllArriveIntact) {
  StartServer({}, [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  constexpr int kThreads = 4;
  constexpr int kWrites = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWrites; ++i) {
        ASSERT_TRUE(conn->Write(std::string(8, static_cast<char>('0' + t))).ok());
      }
    });
  }
  for (auto& thread : threads) thread.join();
  auto data = client.ReadExactly(kThreads * kWrites * 8);
  ASSERT_TRUE(data.ok()) << data.status();
  int counts[kThreads] = {};
  for (size_t i = 0; i < data->size(); i += 8) {
    // Each 8-byte write arrives whole: writes never interleave.
    ASSERT_EQ(data->substr(i, 8), std::string(8, (*data)[i]));
    counts[(*data)[i] - '0']++;
  }
  for (int& count : counts) EXPECT_EQ(count, kWrites);
}

// Write() is safe from any thread, so it must not read what the loop thread
// changes: SetTimeouts() rewrites the connection's options on the loop while
// other threads write. Meant for TSan (--config=tsan), which reports a read
// of those options in Write() as a data race; every build checks the bytes.
TEST_F(ConnectionTest, WritesFromOtherThreadsDoNotRaceWithTimeoutChangesOnTheLoop) {
  StartServer({}, [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  constexpr int kThreads = 2;
  constexpr int kWrites = 500;
  std::atomic<bool> writing{true};
  std::thread changer([&] {
    for (int i = 0; writing.load(); ++i) {
      absl::Duration timeout = absl::Seconds(60 + i % 2);
      conn->SetTimeouts(timeout, timeout, timeout);
      DrainLoop(conn->loop());  // the change ran on the loop
    }
  });
  std::vector<std::thread> writers;
  for (int t = 0; t < kThreads; ++t) {
    writers.emplace_back([&] {
      for (int i = 0; i < kWrites; ++i) EXPECT_TRUE(conn->Write("12345678").ok());
    });
  }
  for (auto& writer : writers) writer.join();
  writing = false;
  changer.join();
  auto data = client.ReadExactly(kThreads * kWrites * 8);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(conn->active());
}

TEST_F(ConnectionTest, WriteAfterCloseReturnsAnError) {
  StartServer();
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  conn->Close(absl::CancelledError("test"));
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  absl::Status status = conn->Write("too late");
  EXPECT_TRUE(absl::IsFailedPrecondition(status)) << status;
  EXPECT_TRUE(absl::IsCancelled(recorder_.Reason()));
  EXPECT_TRUE(client.WaitForClose(absl::Seconds(5)));
}

TEST_F(ConnectionTest, HalfCloseFromPeerStillDeliversTheReply) {
  StartServer();
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll("last words").ok());
  client.ShutdownWrite();
  auto rest = client.ReadUntilEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "last words");
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST(ConnectionPeerClosedTest, OnPeerClosedKeepsTheConnectionOpenForLaterReplies) {
  // The handler answers from another thread after the peer's FIN; with
  // on_peer_closed set the connection waits for it instead of closing.
  Notification peer_closed;
  ConnectionPtr server_conn;
  Mutex mu;
  auto callbacks = std::make_shared<ConnectionCallbacks>();
  callbacks->on_request = [](const ConnectionPtr&, LinkBuffer& input) { input.Clear(); };
  callbacks->on_peer_closed = [&](const ConnectionPtr& conn) {
    {
      MutexLock lock(&mu);
      server_conn = conn;
    }
    peer_closed.Notify();
  };
  ServerOptions options;
  options.num_loops = 1;
  options.callbacks = callbacks;
  auto server = Server::Create(options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  auto client = BlockingClient::Connect((*server)->listen_address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(client->SendAll("question").ok());
  client->ShutdownWrite();
  ASSERT_TRUE(peer_closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
  ConnectionPtr conn;
  {
    MutexLock lock(&mu);
    conn = server_conn;
  }
  // Without on_peer_closed the EOF's turn would have closed the connection.
  DrainLoop(conn->loop());
  EXPECT_TRUE(conn->active());
  std::thread late([conn] {
    ASSERT_TRUE(conn->Write("late answer").ok());
    conn->CloseAfterFlush();
  });
  late.join();
  auto rest = client->ReadUntilEof();
  ASSERT_TRUE(rest.ok()) << rest.status();
  EXPECT_EQ(*rest, "late answer");
  conn.reset();
  (*server)->Shutdown(absl::Seconds(1));
}

TEST_F(ConnectionTest, PeerResetClosesWithAnErrorAndServerKeepsServing) {
  StartServer();
  BlockingClient client = Connect();
  client.Reset();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  auto other = BlockingClient::Connect(server_->listen_address());
  ASSERT_TRUE(other.ok());
  ASSERT_TRUE(other->SendAll("still here").ok());
  EXPECT_EQ(*other->ReadExactly(10), "still here");
}

TEST_F(ConnectionTest, PeerResetMidWriteClosesTheConnection) {
  StartServer({}, [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  // Fill the socket buffers (the client never reads), then reset.
  for (int i = 0; i < 64; ++i) (void)conn->Write(std::string(64 << 10, 'w'));
  // 4 MiB is far more than the socket buffers take: once the loop has
  // written, the rest stays pending.
  ASSERT_TRUE(WaitFor([&] { return server_->Stats().bytes_out > 0; }));
  client.Reset();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(recorder_.Reason().ok());
}

TEST_F(ConnectionTest, IdleTimeoutClosesASilentConnection) {
  ConnectionOptions options;
  options.idle_timeout = absl::Milliseconds(100);
  StartServer(options);
  BlockingClient client = Connect();
  absl::Time start = absl::Now();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
  EXPECT_TRUE(absl::IsDeadlineExceeded(recorder_.Reason())) << recorder_.Reason();
  EXPECT_EQ(server_->Stats().timeouts, 1);
}

TEST_F(ConnectionTest, ActiveConnectionOutlivesItsIdleTimeout) {
  ConnectionOptions options;
  options.idle_timeout = absl::Milliseconds(300);
  StartServer(options);
  BlockingClient client = Connect();
  // Traffic for twice the idle timeout. The gaps between messages are the
  // behaviour under test (a connection that is never silent for long); at a
  // thirtieth of the timeout, a stalled test thread does not decide the
  // outcome.
  const absl::Time until = absl::Now() + 2 * options.idle_timeout;
  while (absl::Now() < until) {
    ASSERT_TRUE(client.SendAll("k").ok());
    ASSERT_TRUE(client.ReadExactly(1).ok());
    absl::SleepFor(options.idle_timeout / 30);
  }
  EXPECT_FALSE(recorder_.disconnected.HasBeenNotified());
}

TEST_F(ConnectionTest, ReadTimeoutClosesAConnectionStuckOnAPartialFrame) {
  ConnectionOptions options;
  options.read_timeout = absl::Milliseconds(100);
  // The handler never consumes: the bytes are a partial frame.
  StartServer(options, [](const ConnectionPtr&, LinkBuffer&) {});
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll("half a fr").ok());
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(recorder_.Reason().message(), "read timeout");
}

TEST_F(ConnectionTest, SlowConsumerCannotGrowOutputBeyondTheCap) {
  ConnectionOptions options;
  options.output_high_watermark = 256 << 10;
  options.output_low_watermark = 64 << 10;
  options.max_output_bytes = 1 << 20;
  StartServer(options,
              [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();  // never reads
  ConnectionPtr conn = recorder_.Conn();
  absl::Status status;
  size_t accepted = 0;
  for (int i = 0; i < 1000 && status.ok(); ++i) {
    status = conn->Write(std::string(64 << 10, 'z'));
    if (status.ok()) accepted += 64 << 10;
    // Paces the writer so the loop flushes between writes (the watermark
    // callbacks fire from flushes); the pace does not decide the outcome.
    absl::SleepFor(absl::Microseconds(200));
  }
  EXPECT_TRUE(absl::IsResourceExhausted(status)) << status;
  EXPECT_LE(conn->pending_output_bytes(), options.max_output_bytes);
  EXPECT_LT(accepted, 64u << 20);  // bounded by the cap plus the kernel buffers
  // Draining crosses the low watermark again.
  auto drained = client.ReadExactly(accepted);
  ASSERT_TRUE(drained.ok()) << drained.status();
  auto saw = [&](const std::string& event) {
    std::vector<std::string> events = recorder_.Events();
    return std::find(events.begin(), events.end(), event) != events.end();
  };
  EXPECT_TRUE(saw("high-watermark"));
  EXPECT_TRUE(WaitFor([&] { return saw("low-watermark"); }));
}

TEST_F(ConnectionTest, ReaderThatNeverConsumesBoundsBufferedInput) {
  ConnectionOptions options;
  options.max_input_bytes = 256 << 10;
  options.read_chunk_bytes = 64 << 10;
  std::atomic<size_t> max_seen{0};
  StartServer(options, [&](const ConnectionPtr&, LinkBuffer& input) {
    size_t len = input.Len();
    if (len > max_seen.load()) max_seen = len;
  });
  BlockingClient client = Connect();
  int fd = client.fd();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  std::string chunk(64 << 10, 'f');
  size_t sent = 0;
  absl::Time deadline = absl::Now() + absl::Seconds(2);
  while (absl::Now() < deadline && sent < (64u << 20)) {
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) sent += static_cast<size_t>(n);
    if (n < 0) {
      pollfd writable = {fd, POLLOUT, 0};
      (void)::poll(&writable, 1, 5);  // until the socket takes more (or 5 ms)
    }
  }
  EXPECT_GT(sent, options.max_input_bytes);  // the kernel absorbed some, then stopped
  EXPECT_LT(sent, 64u << 20);                // TCP flow control pushed back
  EXPECT_LE(max_seen.load(), options.max_input_bytes);
  ConnectionPtr conn = recorder_.Conn();
  EXPECT_TRUE(conn->active());
}

TEST_F(ConnectionTest, PauseReadStopsDeliveryAndResumeReadDeliversWhatArrived) {
  std::atomic<size_t> delivered{0};
  StartServer({}, [&](const ConnectionPtr&, LinkBuffer& input) {
    delivered += input.Len();
    (void)input.Skip(input.Len());
  });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  conn->PauseRead();
  DrainLoop(conn->loop());  // the pause is in effect
  ASSERT_TRUE(client.SendAll("paused bytes").ok());
  // Loopback: the bytes are in the server's socket now, and a loop reading
  // it would deliver them within the turns DrainLoop waits for.
  DrainLoop(conn->loop());
  EXPECT_EQ(delivered.load(), 0u);
  conn->ResumeRead();
  EXPECT_TRUE(WaitFor([&] { return delivered.load() >= 12; }));
  EXPECT_EQ(delivered.load(), 12u);
}

TEST_F(ConnectionTest, SmallWritesShareBlocksAndOutputIsMeasuredInBlocks) {
  StartServer({}, [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  // 100 writes of 37 bytes from one loop task: they wait in the output until
  // the turn ends, copied into shared blocks (one 4 KiB block, not 100).
  Notification measured;
  size_t memory = 0;
  conn->loop()->RunInLoop([&] {
    for (int i = 0; i < 100; ++i) {
      LinkBuffer answer;
      answer.WriteString(std::string(37, 'a'));
      ASSERT_TRUE(conn->Write(std::move(answer)).ok());
    }
    memory = conn->pending_output_memory();
    measured.Notify();
  });
  measured.WaitForNotification();
  EXPECT_EQ(memory, 4096u);
  ASSERT_TRUE(client.ReadExactly(3700).ok());
  EXPECT_TRUE(WaitFor([&] { return conn->pending_output_memory() == 0; }));
}

TEST_F(ConnectionTest, WriteThenRunsOnceOnTheLoopAfterTheFlushOrARefusalOrAClose) {
  ConnectionOptions options;
  options.max_output_bytes = 1 << 20;
  StartServer(options,
              [](const ConnectionPtr&, LinkBuffer& input) { (void)input.Skip(input.Len()); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  std::atomic<int> ran{0};
  std::atomic<bool> on_loop{true};
  std::atomic<size_t> pending_then{1};
  auto then = [&] {
    on_loop = on_loop && conn->loop()->IsInLoopThread();
    pending_then = conn->pending_output_bytes();
    ++ran;
  };
  // Written from this (non-loop) thread: runs on the loop, after the flush
  // handed the bytes to the socket.
  ASSERT_TRUE(conn->Write(LinkBuffer(), then).ok());  // empty: just queued
  LinkBuffer data;
  data.WriteString("answer");
  ASSERT_TRUE(conn->Write(std::move(data), then).ok());
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 2; }));
  EXPECT_EQ(pending_then.load(), 0u);
  ASSERT_TRUE(client.ReadExactly(6).ok());
  // Refused (over the cap): still runs, once.
  LinkBuffer big;
  big.WriteString(std::string(2 << 20, 'x'));
  EXPECT_TRUE(absl::IsResourceExhausted(conn->Write(std::move(big), then)));
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 3; }));
  // Closed: still runs, once.
  conn->Close();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  LinkBuffer late;
  late.WriteString("late");
  EXPECT_FALSE(conn->Write(std::move(late), then).ok());
  ASSERT_TRUE(WaitFor([&] { return ran.load() == 4; }));
  DrainLoop(conn->loop());
  EXPECT_EQ(ran.load(), 4);
  EXPECT_TRUE(on_loop.load());
}

TEST_F(ConnectionTest, OutputAboveTheHighWatermarkPausesReadingUntilItDrains) {
  ConnectionOptions options;
  options.output_high_watermark = 256 << 10;
  options.output_low_watermark = 64 << 10;
  options.pause_read_above_high_watermark = true;
  std::atomic<size_t> delivered{0};
  // Every request byte is answered with 128 bytes: a peer that sends and
  // never reads fills the output.
  StartServer(options, [&](const ConnectionPtr& conn, LinkBuffer& input) {
    const size_t n = input.Len();
    delivered += n;
    (void)input.Skip(n);
    (void)conn->Write(std::string(n * 128, 'r'));
  });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  // Enough requests to fill the kernel's buffers and then the output.
  const std::string requests(8 << 10, 'q');
  int fd = client.fd();
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  auto saw = [&](const std::string& event) {
    std::vector<std::string> events = recorder_.Events();
    return std::find(events.begin(), events.end(), event) != events.end();
  };
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!saw("high-watermark") && absl::Now() < deadline) {
    (void)::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL);
    pollfd writable = {fd, POLLOUT, 0};
    (void)::poll(&writable, 1, 5);
  }
  ASSERT_TRUE(saw("high-watermark"));
  DrainLoop(conn->loop());
  // Reading stopped: what was delivered stays put while more is sent.
  const size_t before = delivered.load();
  for (int i = 0; i < 4; ++i) (void)::send(fd, requests.data(), requests.size(), MSG_NOSIGNAL);
  DrainLoop(conn->loop());
  EXPECT_EQ(delivered.load(), before);
  // The peer reads its answers: the output drains, reading resumes and every
  // request is answered.
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  size_t answered = 0;
  while (!saw("low-watermark") || answered < delivered.load() * 128) {
    auto chunk = client.ReadExactly(128);
    ASSERT_TRUE(chunk.ok()) << chunk.status();
    answered += 128;
  }
  EXPECT_TRUE(WaitFor([&] { return delivered.load() > before; }));
  // The handler uses this frame's variables: no input may reach it after.
  conn->Close();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
}

TEST_F(ConnectionTest, ReadTimeoutDoesNotCountTimeTheServerPausedReading) {
  ConnectionOptions options;
  options.read_timeout = absl::Milliseconds(100);
  StartServer(options, [](const ConnectionPtr&, LinkBuffer&) {});  // leaves a "partial frame"
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  conn->PauseRead();
  DrainLoop(conn->loop());
  ASSERT_TRUE(client.SendAll("partial").ok());
  conn->ResumeRead();  // delivers "partial", which stays buffered
  DrainLoop(conn->loop());
  conn->PauseRead();
  // Paused far longer than the read timeout: the connection stays.
  Notification waited;
  conn->loop()->RunAfter(absl::Milliseconds(500), [&] { waited.Notify(); });
  waited.WaitForNotification();
  EXPECT_TRUE(conn->active());
  // Listening again, the peer's silence counts.
  conn->ResumeRead();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(recorder_.Reason().message(), "read timeout");
}

TEST_F(ConnectionTest, ASpentBudgetStopsReadingConnectionsAboveTheReserveUntilItHasRoom) {
  auto budget = std::make_shared<MemoryBudget>(/*limit=*/1 << 20, /*per_connection_reserve=*/
                                               64 << 10);
  ConnectionOptions options;
  options.memory_budget = budget;
  std::atomic<size_t> delivered{0};
  // Keeps everything it is given: its input counts against the budget.
  StartServer(options, [&](const ConnectionPtr&, LinkBuffer& input) { delivered = input.Len(); });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  budget->Add(1 << 20);  // someone else spent the budget
  ASSERT_TRUE(client.SendAll(std::string(200 << 10, 'b')).ok());
  // Reads while its blocks hold less than the reserve (how many bytes that
  // is depends on how much each read found), then stops and waits for room.
  ASSERT_TRUE(WaitFor([&] { return budget->Stats().waiting == 1; }));
  DrainLoop(conn->loop());
  const size_t held = delivered.load();
  EXPECT_GT(held, 0u);
  EXPECT_LT(held, 200u << 10);
  EXPECT_EQ(budget->Stats().waiting, 1);
  // Room again: reading resumes and takes the rest.
  budget->Add(-(1 << 20));
  EXPECT_TRUE(WaitFor([&] { return delivered.load() == (200u << 10); }));
  // Its input is charged (to within the granule).
  EXPECT_GE(budget->used(), static_cast<int64_t>(150 << 10));
  conn->Close();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(budget->used(), 0);  // closing gives it all back
}

TEST_F(ConnectionTest, PrepaidInputIsReadEvenWhenTheBudgetIsSpent) {
  auto budget = std::make_shared<MemoryBudget>(1 << 20, 64 << 10);
  ConnectionOptions options;
  options.memory_budget = budget;
  std::atomic<size_t> delivered{0};
  StartServer(options, [&](const ConnectionPtr& conn, LinkBuffer& input) {
    delivered = input.Len();
    // The first bytes announce a large frame: its rest is paid for.
    if (input.Len() < (150u << 10)) conn->SetPrepaidInput((150u << 10) - input.Len());
  });
  BlockingClient client = Connect();
  ConnectionPtr conn = recorder_.Conn();
  budget->Add(1 << 20);
  ASSERT_TRUE(client.SendAll(std::string(150 << 10, 'p')).ok());
  EXPECT_TRUE(WaitFor([&] { return delivered.load() == (150u << 10); }));
  conn->Close();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  budget->Add(-(1 << 20));
  EXPECT_EQ(budget->used(), 0);
}

}  // namespace
}  // namespace netpoll

namespace netpoll {
namespace {

TEST_F(ConnectionTest, AbortSendsAResetToThePeer) {
  StartServer();
  BlockingClient client = Connect();
  recorder_.Conn()->Abort();
  auto read = client.ReadExactly(1);
  ASSERT_FALSE(read.ok());
  EXPECT_NE(read.status().message().find("reset"), absl::string_view::npos) << read.status();
  ASSERT_TRUE(recorder_.disconnected.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::IsAborted(recorder_.Reason()));
}

}  // namespace
}  // namespace netpoll

namespace netpoll {
namespace {

TEST_F(ConnectionTest, HandlerMayCloseTheConnectionAndKeepUsingItsArgument) {
  std::atomic<bool> saw_closed{false};
  Notification handler_done;
  StartServer({}, [&](const ConnectionPtr& conn, LinkBuffer& input) {
    (void)input.Skip(input.Len());
    conn->Close(absl::CancelledError("closed by handler"));  // runs now: we are on the loop
    saw_closed = conn->state() == ConnectionState::kClosed;
    handler_done.Notify();
  });
  BlockingClient client = Connect();
  ASSERT_TRUE(client.SendAll("bye").ok());
  ASSERT_TRUE(handler_done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(saw_closed.load());
  EXPECT_TRUE(recorder_.disconnected.HasBeenNotified());
}

}  // namespace
}  // namespace netpoll

namespace netpoll {
namespace {

TEST(ConnectionTimeouts, PerConnectionIdleTimeoutOverridesTheServerDefault) {
  auto callbacks = std::make_shared<ConnectionCallbacks>();
  Notification closed;
  absl::Status reason;
  callbacks->on_connect = [](const ConnectionPtr& conn) {
    // The server default has no timeouts; this connection gets its own.
    conn->SetTimeouts(absl::InfiniteDuration(), absl::InfiniteDuration(), absl::Milliseconds(100));
  };
  callbacks->on_disconnect = [&](const ConnectionPtr&, const absl::Status& why) {
    reason = why;
    closed.Notify();
  };
  ServerOptions options;
  options.num_loops = 1;
  options.callbacks = callbacks;
  auto server = Server::Create(options);
  ASSERT_TRUE(server.ok());
  ASSERT_TRUE((*server)->Start(*SocketAddress::Parse("127.0.0.1:0")).ok());
  auto client = testing::BlockingClient::Connect((*server)->listen_address());
  ASSERT_TRUE(client.ok());
  ASSERT_TRUE(closed.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::IsDeadlineExceeded(reason)) << reason;
  EXPECT_TRUE(client->WaitForClose(absl::Seconds(2)));
}

}  // namespace
}  // namespace netpoll
