// Fault injection against the client Channel: every call issued completes
// exactly once, whatever the server does. Each test counts calls issued and
// completions by outcome, and checks that no call completed twice or never.
#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/server.h"
#include "netpoll/socket_address.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "tests/harness/call_ledger.h"
#include "tests/harness/scripted_server.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::ScriptedServer;
using Ledger = testing::CallLedger;

class ChannelFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ChannelOptions options;
    options.timeout = absl::Seconds(3);
    options.reconnect_backoff = absl::Milliseconds(5);
    options.max_reconnect_backoff = absl::Milliseconds(20);
    // These cases account for raw failures; retries have their own tests.
    options.retry.max_retries = 0;
    channel_ = std::move(*Channel::Create(server_.address(), options));
    ledger_ = std::make_unique<Ledger>(channel_.get());
  }

  ScriptedServer server_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<Ledger> ledger_;
};

TEST_F(ChannelFaultTest, ServerKilledMidCallFailsEveryInFlightCallOnce) {
  for (int i = 0; i < 50; ++i) ledger_->Issue("Echo");
  for (int i = 0; i < 200; ++i) ledger_->Issue("Never");
  // Every call reached the server (the Echo ones are answered, the rest held).
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return server_.requests() == 250; }));
  server_.Kill();
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  ledger_->ExpectExactlyOnce();
  EXPECT_EQ(ledger_->Count("OK"), 50);
  EXPECT_EQ(ledger_->Count("UNAVAILABLE"), 200);
}

TEST_F(ChannelFaultTest, ConnectionResetFailsTheCallsOnThatConnection) {
  for (int i = 0; i < 20; ++i) ledger_->Issue("Never");
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return server_.requests() == 20; }));
  ledger_->Issue("Reset");
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  ledger_->ExpectExactlyOnce();
  EXPECT_EQ(ledger_->Count("UNAVAILABLE"), 21);
  // The channel dials again by itself.
  ledger_->Issue("Echo");
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(5)));
  EXPECT_EQ(ledger_->Count("OK"), 1);
}

TEST_F(ChannelFaultTest, ResponsesAfterTheTimeoutAreDropped) {
  CallOptions options;
  options.timeout = absl::Milliseconds(30);
  for (int i = 0; i < 100; ++i) ledger_->Issue("Slow", options, /*delay ms=*/60);
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  // Every late response was sent; one more call's answer comes after them
  // on the same connection, so by then the channel has seen them all.
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return server_.delayed_answers() == 100; }));
  ledger_->Issue("Echo");
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  ledger_->ExpectExactlyOnce();
  EXPECT_EQ(ledger_->Count("OK"), 1);
  EXPECT_EQ(ledger_->Count("DEADLINE_EXCEEDED"), 100);
  EXPECT_EQ(channel_->in_flight(), 0u);
}

TEST_F(ChannelFaultTest, SlowServerStillAnswersEveryCallWithinItsDeadline) {
  for (int i = 0; i < 200; ++i)
    ledger_->Issue(i % 2 ? "Slow" : "Echo", CallOptions(), /*delay ms=*/i % 20);
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  ledger_->ExpectExactlyOnce();
  EXPECT_EQ(ledger_->Count("OK"), 200);
}

TEST_F(ChannelFaultTest, ChannelReconnectsByItselfWhenTheServerRestarts) {
  ledger_->Issue("Echo");
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(5)));
  server_.Kill();
  // While the server is down, calls fail (never hang).
  for (int i = 0; i < 10; ++i) ledger_->Issue("Echo");
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(10)));
  EXPECT_EQ(ledger_->Count("UNAVAILABLE"), 10);
  ASSERT_TRUE(server_.Restart().ok());
  // After at most one backoff period, calls succeed again with no help.
  EchoRequest request;
  request.set_message("back");
  EchoResponse response;
  absl::Status status;
  EXPECT_TRUE(netpoll::testing::WaitFor([&] {
    status = channel_->CallMethod("example.EchoService", "Echo", request, &response);
    return status.ok();
  })) << status;
  EXPECT_EQ(response.message(), "back");
  ledger_->ExpectExactlyOnce();
}

TEST_F(ChannelFaultTest, MixedFaultsUnderConcurrentLoadCompleteEveryCallOnce) {
  CallOptions short_deadline;
  short_deadline.timeout = absl::Milliseconds(40);
  const char* methods[] = {"Echo", "Slow", "Fail", "Echo", "Twice", "Never"};
  for (int round = 0; round < 5; ++round) {
    for (int i = 0; i < 100; ++i) {
      ledger_->Issue(methods[i % 6], short_deadline, /*code=*/i % 30);
    }
    if (round == 2) ledger_->Issue("Reset");
    // Spreads the rounds over time (so the reset meets calls in flight);
    // every check waits for the calls themselves.
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(ledger_->WaitAll(absl::Seconds(20)));
  ledger_->ExpectExactlyOnce();
  int total = ledger_->Count("OK") + ledger_->Count("UNAVAILABLE") +
              ledger_->Count("DEADLINE_EXCEEDED") + ledger_->Count("INTERNAL") +
              ledger_->Count("UNKNOWN");
  EXPECT_GE(total, 0);
  EXPECT_EQ(channel_->in_flight(), 0u);
}

// A response no call is waiting for (a duplicate, an unknown correlation id)
// is dropped and logged on every connection type: it completes no call, and
// the call it does not belong to, like every later call, is unharmed.
class UnexpectedResponseTest : public ::testing::TestWithParam<ConnectionType> {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    ChannelOptions options;
    options.connection_type = GetParam();
    options.timeout = absl::Seconds(5);
    options.retry.max_retries = 0;  // a failure must show, not be retried away
    channel_ = std::move(*Channel::Create(server_.address(), options));
  }

  absl::Status Call(absl::string_view method, const std::string& message, EchoResponse* response) {
    EchoRequest request;
    request.set_message(message);
    return channel_->CallMethod("example.EchoService", method, request, response);
  }

  ScriptedServer server_;
  std::unique_ptr<Channel> channel_;
};

TEST_P(UnexpectedResponseTest, DuplicateResponseIsDroppedAndLaterCallsSucceed) {
  for (int i = 0; i < 20; ++i) {
    EchoResponse response;
    absl::Status status = Call(i % 2 ? "Echo" : "Twice", absl::StrCat("m", i), &response);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status;
    EXPECT_EQ(response.message(), absl::StrCat("m", i));
  }
}

TEST_P(UnexpectedResponseTest, UnknownCorrelationIdIsDroppedAndTheCallGetsItsOwnAnswer) {
  for (int i = 0; i < 20; ++i) {
    EchoResponse response;
    absl::Status status = Call(i % 2 ? "Echo" : "Stray", absl::StrCat("m", i), &response);
    ASSERT_TRUE(status.ok()) << "call " << i << ": " << status;
    EXPECT_EQ(response.message(), absl::StrCat("m", i));
  }
}

INSTANTIATE_TEST_SUITE_P(ConnectionTypes, UnexpectedResponseTest,
                         ::testing::Values(ConnectionType::kSingle, ConnectionType::kPooled),
                         [](const ::testing::TestParamInfo<ConnectionType>& info) {
                           return info.param == ConnectionType::kSingle ? "Single" : "Pooled";
                         });

// A server that accepts every connection and closes it before answering: the
// channel redials with growing backoff (as after a failed dial) instead of
// in a loop, and every call completes, failing fast while it backs off.
TEST(BrokenServerTest, ConnectionsBrokenBeforeAnyAnswerAreRedialedWithBackoff) {
  netpoll::ServerOptions server_options;
  server_options.num_loops = 1;
  server_options.callbacks->on_connect = [](const netpoll::ConnectionPtr& conn) {
    conn->Close(absl::UnavailableError("closed at once"));
  };
  auto server = netpoll::Server::Create(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start(*netpoll::SocketAddress::Parse("127.0.0.1:0")).ok());

  ChannelOptions options;
  options.reconnect_backoff = absl::Milliseconds(10);
  options.max_reconnect_backoff = absl::Milliseconds(80);
  options.retry.max_retries = 0;
  auto channel = Channel::Create((*server)->listen_address().ToString(), options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  EchoRequest request;
  request.set_message("hi");
  int calls = 0;
  const absl::Time end = absl::Now() + absl::Milliseconds(400);
  while (absl::Now() < end) {
    EchoResponse response;
    absl::Status s = (*channel)->CallMethod("example.EchoService", "Echo", request, &response);
    EXPECT_EQ(ErrorCodeOf(s), EFAILEDSOCKET) << s;
    ++calls;
  }
  const int64_t accepted = (*server)->Stats().connections_accepted;
  // One redial at once, then 10 + 20 + 40 + 80 + 80 ... ms of backoff in
  // 400 ms: about ten dials. Without backoff every call dials (over 1,000).
  EXPECT_LE(accepted, 20) << calls << " calls";
  EXPECT_GT(calls, accepted) << "calls during the backoff fail fast without dialing";
  channel->reset();
  (*server)->Shutdown(absl::Seconds(1));
}

TEST(NonReadingServerTest, RequestsBeyondTheUnwrittenCapFailFastAndTheWriteTimeoutCloses) {
  // A server that accepts and never reads a byte.
  netpoll::ServerOptions server_options;
  server_options.num_loops = 1;
  server_options.callbacks->on_connect = [](const netpoll::ConnectionPtr& conn) {
    conn->PauseRead();
  };
  auto server = netpoll::Server::Create(server_options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_TRUE((*server)->Start(*netpoll::SocketAddress::Parse("127.0.0.1:0")).ok());

  ChannelOptions options;
  options.timeout = absl::Seconds(60);  // far beyond what the test waits
  // Above what loopback's kernel buffers take (tcp_wmem 4 MiB + tcp_rmem 6 MiB at most),
  // so that unsent requests stay queued and the write timeout has work to
  // time out; the calls beyond it fail at once.
  options.max_unwritten_bytes = 8 << 20;
  options.write_timeout = absl::Seconds(1);
  options.retry.max_retries = 0;
  // By brpc error number. Declared before the channel, whose destructor
  // completes the calls still running if an assertion ends the test early.
  netpoll::Mutex mu;
  std::map<int32_t, int> outcomes;
  int completed = 0;
  auto channel = Channel::Create((*server)->listen_address().ToString(), options);
  ASSERT_TRUE(channel.ok()) << channel.status();
  EchoRequest request;
  request.set_message(std::string(256 << 10, 'w'));
  int issued = 0;
  auto issue = [&] {
    ++issued;
    auto response = std::make_shared<EchoResponse>();
    (*channel)->CallMethod("example.EchoService", "Echo", request, response.get(), CallOptions(),
                           [&, response](const absl::Status& status) {
                             netpoll::MutexLock lock(&mu);
                             ++outcomes[ErrorCodeOf(status)];
                             ++completed;
                           });
  };
  auto overcrowded = [&] {
    netpoll::MutexLock lock(&mu);
    return outcomes[EOVERCROWDED] > 0;
  };
  // Connected first: calls issued while dialing wait in the channel.
  issue();
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return (*server)->connection_count() == 1; }));
  // Calls of 256 KiB until one is refused at once for the cap: once the
  // kernel's buffers are full (some 40 calls), unsent requests queue up to
  // the cap (32 more). The write timeout runs from when the kernel stopped
  // taking bytes; should it close the connection before the calls reach the
  // cap (a slow machine), the channel dials again and they fill the next one.
  while (issued < 512 && !overcrowded()) issue();
  ASSERT_TRUE(overcrowded()) << issued << " calls and none refused for the cap";
  // The calls queued on the connection fail when the write timeout closes
  // it, long before their deadline.
  ASSERT_TRUE(netpoll::testing::WaitFor([&] {
    netpoll::MutexLock lock(&mu);
    return completed == issued;
  }));
  {
    netpoll::MutexLock lock(&mu);
    EXPECT_GE(outcomes[EFAILEDSOCKET], 1);
    EXPECT_EQ(outcomes[EOVERCROWDED] + outcomes[EFAILEDSOCKET], issued);
  }
  channel->reset();
  (*server)->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace nprpc
