#include "rpc/server_streaming.h"

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "proto/echo.pb.h"
#include "rpc/server_context.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"
#include "rpc/testing/fake_stream.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using stream_internal::ServerReactorDriver;
using testing::FakeStreamCall;

EchoResponse Resp(const std::string& text) {
  EchoResponse r;
  r.set_message(text);
  return r;
}

EchoRequest Req(const std::string& text) {
  EchoRequest r;
  r.set_message(text);
  return r;
}

// Blocking helpers on the client end.
bool ClientRead(ClientStreamCore& core, google::protobuf::Message* message) {
  return stream_internal::AwaitCompletion<bool>(
      [&](StreamCallback done) { core.Read(message, std::move(done)); });
}

bool ClientWrite(ClientStreamCore& core, const google::protobuf::Message& message) {
  return stream_internal::AwaitCompletion<bool>(
      [&](StreamCallback done) { core.Write(message, std::move(done)); });
}

absl::Status ClientFinish(ClientStreamCore& core) {
  return stream_internal::AwaitCompletion<absl::Status>(
      [&](absl::AnyInvocable<void(absl::Status)> done) { core.Finish(std::move(done)); });
}

class ServerStreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "server-stream-test";
    loops_ = std::move(netpoll::EventLoopGroup::Create(options)).value();
  }
  void TearDown() override { loops_->Stop(); }

  netpoll::EventLoop* loop() { return loops_->loop(0); }
  void DrainLoop() {
    netpoll::Notification drained;
    loop()->QueueInLoop([&] { drained.Notify(); });
    drained.WaitForNotification();
  }

  std::unique_ptr<netpoll::EventLoopGroup> loops_;
};

// ------------------------------------------------------------------ Sync

TEST_F(ServerStreamingTest, SyncReaderReadsUntilTheClientHalfCloses) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  std::shared_ptr<ClientStreamCore> client = call->client();
  std::vector<std::string> got;
  std::thread server([&] {
    ServerReader<EchoRequest> reader(call->server().get());
    EchoRequest request;
    while (reader.Read(&request)) got.push_back(request.message());
  });
  EXPECT_TRUE(ClientWrite(*client, Req("a")));
  EXPECT_TRUE(ClientWrite(*client, Req("b")));
  client->WritesDone([](bool) {});
  server.join();
  EXPECT_EQ(got, (std::vector<std::string>{"a", "b"}));
}

TEST_F(ServerStreamingTest, SyncWriteWaitsUntilTheClientReads) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());  // window: 1
  std::shared_ptr<ClientStreamCore> client = call->client();
  std::atomic<bool> client_read{false};
  std::atomic<bool> second_write_early{false};
  std::thread server([&] {
    ServerWriter<EchoResponse> writer(call->server().get());
    EXPECT_TRUE(writer.Write(Resp("1")));  // fits the window
    EXPECT_TRUE(writer.Write(Resp("2")));  // waits for a read
    if (!client_read.load()) second_write_early = true;
  });
  client_read = true;
  EchoResponse response;
  ASSERT_TRUE(ClientRead(*client, &response));
  EXPECT_EQ(response.message(), "1");
  server.join();
  EXPECT_FALSE(second_write_early.load());
  ASSERT_TRUE(ClientRead(*client, &response));
  EXPECT_EQ(response.message(), "2");
}

TEST_F(ServerStreamingTest, SyncWriteFailsOnceTheCallIsCancelled) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  call->Abort(absl::DeadlineExceededError("deadline"));
  ServerReaderWriter<EchoResponse, EchoRequest> stream(call->server().get());
  EXPECT_FALSE(stream.Write(Resp("late")));
  EchoRequest request;
  EXPECT_FALSE(stream.Read(&request));
  EXPECT_TRUE(stream.context().IsCancelled());
}

// ------------------------------------------------------------------ Callback

class Recorder : public ServerBidiReactor<EchoRequest, EchoResponse> {
 public:
  Recorder(std::vector<std::string>* log, netpoll::Notification* deleted)
      : log_(log), deleted_(deleted) {}
  ~Recorder() override {
    log_->push_back("deleted");
    deleted_->Notify();
  }
  void OnReadDone(bool ok) override { log_->push_back(ok ? "read" : "read-failed"); }
  void OnWriteDone(bool ok) override { log_->push_back(ok ? "written" : "write-failed"); }
  void OnCancel() override { log_->push_back("cancel"); }
  void OnDone() override { log_->push_back("done"); }

  EchoRequest request_;
  EchoResponse response_ = Resp("r");

 private:
  std::vector<std::string>* const log_;
  netpoll::Notification* const deleted_;
};

TEST_F(ServerStreamingTest, FinishOutsideAReactionWithNothingOutstandingRunsOnDoneAtOnce) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  std::vector<std::string> log;
  netpoll::Notification deleted;
  auto reactor = std::make_unique<Recorder>(&log, &deleted);
  Recorder* raw = reactor.get();
  ServerReactorDriver::Start(call->server(), std::move(reactor), nullptr, nullptr);
  raw->Finish(absl::AbortedError("stop"));
  EXPECT_TRUE(deleted.HasBeenNotified());
  EXPECT_EQ(log, (std::vector<std::string>{"done", "deleted"}));
  EXPECT_EQ(call->server_status()->code(), absl::StatusCode::kAborted);
  EXPECT_EQ(ClientFinish(*call->client()).code(), absl::StatusCode::kAborted);
}

TEST_F(ServerStreamingTest, OnDoneWaitsForOutstandingOperations) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  std::vector<std::string> log;
  netpoll::Notification deleted;
  auto reactor = std::make_unique<Recorder>(&log, &deleted);
  Recorder* raw = reactor.get();
  raw->StartRead(&raw->request_);  // before the framework took it
  ServerReactorDriver::Start(call->server(), std::move(reactor), nullptr, nullptr);
  raw->Finish(absl::OkStatus());  // the read is still outstanding: it ends first
  deleted.WaitForNotification();
  DrainLoop();
  EXPECT_EQ(log, (std::vector<std::string>{"read-failed", "done", "deleted"}));
  EXPECT_EQ(call->server_finish_calls(), 1);
}

TEST_F(ServerStreamingTest, CancelReachesTheReactorOnceBeforeItsFailedOperations) {
  std::shared_ptr<FakeStreamCall> call =
      FakeStreamCall::Create(loop(), {.window = 0, .service = "s", .method = "m"});
  std::vector<std::string> log;
  netpoll::Notification deleted;
  class Canceller : public Recorder {
   public:
    using Recorder::Recorder;
    void OnWriteDone(bool ok) override {
      Recorder::OnWriteDone(ok);
      Finish(absl::CancelledError());
    }
  };
  auto reactor = std::make_unique<Canceller>(&log, &deleted);
  Canceller* raw = reactor.get();
  raw->StartRead(&raw->request_);
  raw->StartWrite(&raw->response_);  // window 0: waits for a client read
  ServerReactorDriver::Start(call->server(), std::move(reactor), nullptr, nullptr);
  call->Abort(absl::DeadlineExceededError("deadline"));
  deleted.WaitForNotification();
  DrainLoop();
  EXPECT_EQ(log,
            (std::vector<std::string>{"cancel", "read-failed", "write-failed", "done", "deleted"}));
  EXPECT_EQ(ClientFinish(*call->client()).code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(ServerStreamingTest, ReadReactorSendsTheFinalResponseBeforeAnOkStatus) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  class Reader : public ServerReadReactor<EchoRequest> {};
  auto response = std::make_unique<EchoResponse>(Resp("final"));
  const EchoResponse* raw_response = response.get();
  auto reactor = std::make_unique<Reader>();
  Reader* raw = reactor.get();
  ServerReactorDriver::Start(call->server(), std::move(reactor), std::move(response), raw_response);
  raw->Finish(absl::OkStatus());
  std::shared_ptr<ClientStreamCore> client = call->client();
  EchoResponse got;
  ASSERT_TRUE(ClientRead(*client, &got));
  EXPECT_EQ(got.message(), "final");
  EXPECT_TRUE(ClientFinish(*client).ok());
}

// ------------------------------------------------------------------ Coroutine

Task<absl::Status> EchoTwice(ServerStream<EchoRequest, EchoResponse>& stream) {
  for (int i = 0; i < 2; ++i) {
    std::optional<EchoRequest> request = co_await stream.Read();
    if (!request.has_value()) co_return absl::InternalError("short");
    EchoResponse response = Resp(request->message());
    if (!co_await stream.Write(response)) co_return absl::CancelledError();
  }
  std::optional<EchoRequest> end = co_await stream.Read();
  co_return end.has_value() ? absl::InternalError("long") : absl::OkStatus();
}

TEST_F(ServerStreamingTest, CoroutineStreamResumesAfterEachReadAndWrite) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  ServerStream<EchoRequest, EchoResponse> stream(call->server().get());
  netpoll::Notification done;
  absl::Status status;
  StartDetached(EchoTwice(stream), absl::AnyInvocable<void(absl::Status)>([&](absl::Status s) {
                  status = std::move(s);
                  done.Notify();
                }));
  std::shared_ptr<ClientStreamCore> client = call->client();
  EchoResponse response;
  for (const char* text : {"x", "y"}) {
    ASSERT_TRUE(ClientWrite(*client, Req(text)));
    ASSERT_TRUE(ClientRead(*client, &response));
    EXPECT_EQ(response.message(), text);
  }
  client->WritesDone([](bool) {});
  done.WaitForNotification();
  EXPECT_TRUE(status.ok()) << status;
}

}  // namespace
}  // namespace nprpc
