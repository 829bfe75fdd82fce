#include "rpc/channel.h"

#include <atomic>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/stub_core.h"
#include "tests/harness/scripted_server.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using netpoll::testing::WaitFor;
using testing::ScriptedServer;

class ChannelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    auto channel = Channel::Create(server_.address());
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = std::move(*channel);
  }

  absl::Status Call(absl::string_view method, const std::string& message, int code = 0,
                    const CallOptions& options = {}, EchoResponse* response = nullptr) {
    EchoRequest request;
    request.set_message(message);
    request.set_code(code);
    EchoResponse local;
    return channel_->CallMethod("example.EchoService", method, request,
                                response ? response : &local, options);
  }

  ScriptedServer server_;
  std::unique_ptr<Channel> channel_;
};

TEST_F(ChannelTest, SyncCallReturnsTheResponse) {
  EchoResponse response;
  ASSERT_TRUE(Call("Echo", "hello", 0, {}, &response).ok());
  EXPECT_EQ(response.message(), "hello");
}

TEST_F(ChannelTest, MetadataAndAttachmentTravelBothWays) {
  CallInfo info;
  netpoll::LinkBuffer attachment;
  attachment.WriteBinary("attached-bytes");
  CallOptions options;
  options.metadata = {{"x-tenant", "acme"}};
  options.request_attachment = &attachment;
  options.trace.log_id = 123456789;
  options.trace.request_id = "req-42";
  options.info = &info;
  ASSERT_TRUE(Call("Echo", "hi", 0, options).ok());
  EXPECT_EQ(info.response_attachment.ToString(), "attached-bytes");
  ASSERT_EQ(info.response_metadata.size(), 1u);
  EXPECT_EQ(info.response_metadata[0].first, "x-tenant");
  EXPECT_EQ(info.response_metadata[0].second, "acme");
  EXPECT_EQ(info.error_code, 0);
}

TEST_F(ChannelTest, ErrorResponseKeepsTheBrpcErrorNumber) {
  CallInfo info;
  CallOptions options;
  options.info = &info;
  absl::Status status = Call("Fail", "boom", 4242, options);
  EXPECT_FALSE(status.ok());
  EXPECT_EQ(ErrorCodeOf(status), 4242);
  EXPECT_EQ(info.error_code, 4242);
  EXPECT_NE(status.message().find("boom"), absl::string_view::npos);
}

TEST_F(ChannelTest, TimeoutCompletesWithDeadlineExceededAndTheLateResponseIsDropped) {
  CallOptions options;
  options.timeout = absl::Milliseconds(50);
  absl::Time start = absl::Now();
  absl::Status status = Call("Slow", "late", 300, options);
  // The deadline, not the answer, completed the call (an answer would be OK),
  // and not before its time.
  EXPECT_TRUE(absl::IsDeadlineExceeded(status)) << status;
  EXPECT_EQ(ErrorCodeOf(status), ERPCTIMEDOUT);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(49));
  // The late response arrives on the same connection, before the next
  // call's answer, and is ignored; the channel keeps working.
  ASSERT_TRUE(WaitFor([&] { return server_.delayed_answers() == 1; }));
  EXPECT_TRUE(Call("Echo", "after").ok());
  EXPECT_EQ(channel_->in_flight(), 0u);
}

TEST_F(ChannelTest, CancellationCompletesTheCallOnce) {
  CancellationToken cancel;
  CallOptions options;
  options.cancel = cancel;
  EchoRequest request;
  request.set_message("never");
  EchoResponse response;
  std::atomic<int> completions{0};
  netpoll::Notification done;
  absl::Status result;
  channel_->CallMethod("example.EchoService", "Never", request, &response, options,
                       [&](absl::Status s) {
                         result = std::move(s);
                         completions++;
                         done.Notify();
                       });
  ASSERT_TRUE(WaitFor([&] { return server_.requests() == 1; }));  // in flight
  cancel.Cancel();
  cancel.Cancel();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  // A window for a wrong second completion to show; a correct channel passes
  // whatever its length.
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(absl::IsCancelled(result)) << result;
  EXPECT_EQ(completions.load(), 1);
}

TEST_F(ChannelTest, AlreadyCancelledTokenFailsTheCallAtOnce) {
  CancellationToken cancel;
  cancel.Cancel();
  CallOptions options;
  options.cancel = cancel;
  EXPECT_TRUE(absl::IsCancelled(Call("Never", "x", 0, options)));
}

TEST_F(ChannelTest, ConcurrentCallsFromManyThreadsAreMatchedByCorrelationId) {
  constexpr int kThreads = 4;
  constexpr int kCalls = 300;
  std::atomic<int> mismatches{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) {
        std::string message = std::to_string(t) + ":" + std::to_string(i);
        EchoResponse response;
        absl::Status s = Call(i % 7 == 0 ? "Slow" : "Echo", message, 1, {}, &response);
        if (!s.ok()) failures++;
        if (s.ok() && response.message() != message) mismatches++;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(server_.connections(), 1u);  // all multiplexed on one connection
}

TEST_F(ChannelTest, DuplicateResponseIsDropped) {
  EchoResponse response;
  ASSERT_TRUE(Call("Twice", "dup", 0, {}, &response).ok());
  EXPECT_TRUE(Call("Echo", "next").ok());
}

// The garbage breaks each connection before any answer, so the channel backs
// off from redialing (calls fail fast meanwhile) and recovers by itself.
TEST_F(ChannelTest, GarbageFromTheServerFailsTheCallAndTheChannelRecovers) {
  absl::Status status = Call("Garbage", "x");
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(netpoll::testing::WaitFor([&] { return Call("Echo", "again").ok(); }));
}

TEST_F(ChannelTest, MissingRequiredFieldFailsBeforeSending) {
  EchoRequest request;  // message is required
  EchoResponse response;
  absl::Status status =
      channel_->CallMethod("example.EchoService", "Echo", request, &response, CallOptions{});
  EXPECT_EQ(ErrorCodeOf(status), EREQUEST) << status;
  EXPECT_EQ(server_.requests(), 0);
}

TEST(Channel, UnreachableServerFailsFastWithUnavailable) {
  ScriptedServer server;
  ASSERT_TRUE(server.Start().ok());
  std::string address = server.address();
  server.Kill();
  auto channel = Channel::Create(address);
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("x");
  EchoResponse response;
  absl::Status status = (*channel)->CallMethod("example.EchoService", "Echo", request, &response);
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_EQ(ErrorCodeOf(status), EFAILEDSOCKET);
}

TEST_F(ChannelTest, BlockingCallOnALoopThreadFailsWithFailedPrecondition) {
  EchoRequest request;
  request.set_message("outer");
  EchoResponse response;
  netpoll::Notification done;
  absl::Status outer;
  absl::Status inner;
  absl::Status inner_stub;
  channel_->CallMethod(
      "example.EchoService", "Echo", request, &response, CallOptions{}, [&](absl::Status status) {
        // On the channel's loop thread: a blocking call would wait for this
        // very thread.
        outer = std::move(status);
        EchoRequest nested;
        nested.set_message("nested");
        EchoResponse nested_response;
        inner = channel_->CallMethod("example.EchoService", "Echo", nested, &nested_response);
        // Generated blocking stubs go through the same path.
        codegen_internal::StubCore stub(channel_.get(), "example.EchoService", StubOptions{});
        inner_stub = stub.BlockingCall<EchoResponse>("Echo", nested, CallOptions{}).status();
        done.Notify();
      });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(outer.ok()) << outer;
  EXPECT_TRUE(absl::IsFailedPrecondition(inner)) << inner;
  EXPECT_NE(inner.message().find("loop thread"), absl::string_view::npos) << inner;
  EXPECT_TRUE(absl::IsFailedPrecondition(inner_stub)) << inner_stub;
  // The channel is unharmed.
  EXPECT_TRUE(Call("Echo", "after").ok());
}

TEST(Channel, UnknownProtocolIsRejected) {
  ChannelOptions options;
  options.protocol = "carrier-pigeon";
  auto channel = Channel::Create("127.0.0.1:1", options);
  EXPECT_TRUE(absl::IsInvalidArgument(channel.status())) << channel.status();
  options.protocol = "baidu_std";
  EXPECT_TRUE(Channel::Create("127.0.0.1:1", options).ok());
}

// Destroying a channel inside one of its `done` callbacks runs on its loop
// thread, where the destructor's wait could deadlock: it aborts, naming the
// rule, instead of hanging.
TEST(ChannelDeathTest, DestroyingTheChannelInsideItsDoneCallbackAbortsNamingTheRule) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  for (ConnectionType type : {ConnectionType::kSingle, ConnectionType::kPooled}) {
    EXPECT_DEATH(
        {
          ScriptedServer server;
          if (!server.Start().ok()) return;
          ChannelOptions options;
          options.connection_type = type;
          std::unique_ptr<Channel> channel = std::move(*Channel::Create(server.address(), options));
          EchoRequest request;
          request.set_message("x");
          EchoResponse response;
          netpoll::Notification done;
          channel->CallMethod("example.EchoService", "Echo", request, &response, CallOptions{},
                              [&](const absl::Status&) {
                                channel.reset();
                                done.Notify();
                              });
          done.WaitForNotificationWithTimeout(absl::Seconds(20));
        },
        "must not be destroyed on one of its loop threads");
  }
}

TEST(Channel, RejectsAnAddressWithoutPort) {
  EXPECT_FALSE(Channel::Create("localhost").ok());
  EXPECT_FALSE(Channel::Create("").ok());
}

TEST(Channel, DestroyingTheChannelCancelsInFlightCalls) {
  ScriptedServer server;
  ASSERT_TRUE(server.Start().ok());
  auto channel = Channel::Create(server.address());
  ASSERT_TRUE(channel.ok());
  EchoRequest request;
  request.set_message("x");
  EchoResponse response;
  netpoll::Notification done;
  absl::Status result;
  (*channel)->CallMethod("example.EchoService", "Never", request, &response, CallOptions{},
                         [&](absl::Status s) {
                           result = std::move(s);
                           done.Notify();
                         });
  ASSERT_TRUE(WaitFor([&] { return server.requests() == 1; }));  // in flight
  channel->reset();
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_TRUE(absl::IsCancelled(result)) << result;
}

}  // namespace
}  // namespace nprpc
