#include "rpc/stream_handlers.h"

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
#include "rpc/client_streaming.h"
#include "rpc/server_context.h"
#include "rpc/server_streaming.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"
#include "rpc/testing/fake_stream.h"

namespace nprpc {
namespace {

using codegen_internal::MakeCallbackStreamHandler;
using codegen_internal::MakeCoroutineStreamHandler;
using codegen_internal::MakeSyncStreamHandler;
using example::EchoRequest;
using example::EchoResponse;
using testing::FakeStreamCall;

EchoRequest Req(const std::string& text, int code = 0) {
  EchoRequest r;
  r.set_message(text);
  r.set_code(code);
  return r;
}

class RecordingCompleter : public CallCompleter {
 public:
  explicit RecordingCompleter(absl::Status* out) : out_(out) {}
  void Complete(absl::Status status) override { *out_ = std::move(status); }

 private:
  absl::Status* const out_;
};

class StreamHandlersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "stream-test";
    loops_ = std::move(netpoll::EventLoopGroup::Create(options)).value();
  }
  void TearDown() override {
    for (std::thread& t : threads_) t.join();
    loops_->Stop();
  }

  netpoll::EventLoop* loop() { return loops_->loop(0); }

  // Runs `handler` on a new call where a server would: a thread of its own
  // for a blocking (kWorkerPool) handler, the loop for the others.
  // The fixture keeps the handler until the loop stopped.
  std::shared_ptr<FakeStreamCall> Serve(std::unique_ptr<MethodHandler> owned) {
    MethodHandler* handler = owned.get();
    handlers_.push_back(std::move(owned));
    std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
    std::shared_ptr<ServerStreamCore> server = call->server();
    if (handler->execution_mode() == MethodHandler::ExecutionMode::kWorkerPool) {
      threads_.emplace_back([handler, server] { handler->CallStream(server); });
    } else {
      loop()->QueueInLoop([handler, server] { handler->CallStream(server); });
    }
    return call;
  }

  // Waits until the loop ran what was queued so far.
  void DrainLoop() {
    netpoll::Notification drained;
    loop()->QueueInLoop([&] { drained.Notify(); });
    drained.WaitForNotification();
  }

  // The three kinds, driven by the sync client against `handler`.
  void ExpectClientStreamingSums(std::unique_ptr<MethodHandler> handler) {
    EXPECT_EQ(handler->stream_kind(), StreamKind::kClientStreaming);
    std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
    EchoResponse response;
    ClientWriter<EchoRequest> writer(call->client(), &response);
    for (const char* text : {"a", "b", "c"}) EXPECT_TRUE(writer.Write(Req(text)));
    ASSERT_TRUE(writer.WritesDone());
    EXPECT_TRUE(writer.Finish().ok());
    EXPECT_EQ(response.message(), "abc");
    EXPECT_EQ(call->server_finish_calls(), 1);
  }
  void ExpectServerStreamingCounts(std::unique_ptr<MethodHandler> handler) {
    EXPECT_EQ(handler->stream_kind(), StreamKind::kServerStreaming);
    std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
    ClientReader<EchoResponse> reader(call->client(), Req("x", 3));
    EchoResponse response;
    std::vector<std::string> got;
    while (reader.Read(&response)) got.push_back(response.message());
    EXPECT_EQ(got, (std::vector<std::string>{"x0", "x1", "x2"}));
    EXPECT_TRUE(reader.Finish().ok());
    EXPECT_EQ(call->server_finish_calls(), 1);
  }
  void ExpectBidiEchoes(std::unique_ptr<MethodHandler> handler) {
    EXPECT_EQ(handler->stream_kind(), StreamKind::kBidiStreaming);
    std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
    ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client());
    EchoResponse response;
    for (const char* text : {"ping", "pong", "again"}) {
      ASSERT_TRUE(stream.Write(Req(text)));
      ASSERT_TRUE(stream.Read(&response));
      EXPECT_EQ(response.message(), text);
    }
    ASSERT_TRUE(stream.WritesDone());
    EXPECT_FALSE(stream.Read(&response));
    EXPECT_TRUE(stream.Finish().ok());
    EXPECT_EQ(call->server_finish_calls(), 1);
  }

  std::vector<std::unique_ptr<MethodHandler>> handlers_;
  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::vector<std::thread> threads_;
};

// ------------------------------------------------------------------ Sync

auto SyncSum() {
  return MakeSyncStreamHandler<EchoRequest, EchoResponse, StreamKind::kClientStreaming>(
      [](ServerContext&, ServerReader<EchoRequest>* reader, EchoResponse* response) {
        EchoRequest request;
        std::string sum;
        while (reader->Read(&request)) sum += request.message();
        response->set_message(sum);
        return absl::OkStatus();
      });
}

auto SyncCount() {
  return MakeSyncStreamHandler<EchoRequest, EchoResponse, StreamKind::kServerStreaming>(
      [](ServerContext&, const EchoRequest& request, ServerWriter<EchoResponse>* writer) {
        for (int i = 0; i < request.code(); ++i) {
          EchoResponse response;
          response.set_message(request.message() + std::to_string(i));
          if (!writer->Write(response)) return absl::CancelledError();
        }
        return absl::OkStatus();
      });
}

auto SyncEcho() {
  return MakeSyncStreamHandler<EchoRequest, EchoResponse, StreamKind::kBidiStreaming>(
      [](ServerContext&, ServerReaderWriter<EchoResponse, EchoRequest>* stream) {
        EchoRequest request;
        while (stream->Read(&request)) {
          EchoResponse response;
          response.set_message(request.message());
          if (!stream->Write(response)) return absl::CancelledError();
        }
        return absl::OkStatus();
      });
}

TEST_F(StreamHandlersTest, SyncClientStreamingReadsAllRequestsThenSendsTheResponse) {
  auto handler = SyncSum();
  EXPECT_EQ(handler->execution_mode(), MethodHandler::ExecutionMode::kWorkerPool);
  ExpectClientStreamingSums(std::move(handler));
}

TEST_F(StreamHandlersTest, SyncServerStreamingWritesEveryResponse) {
  auto handler = SyncCount();
  ExpectServerStreamingCounts(std::move(handler));
}

TEST_F(StreamHandlersTest, SyncBidiEchoesPingPong) {
  auto handler = SyncEcho();
  ExpectBidiEchoes(std::move(handler));
}

TEST_F(StreamHandlersTest, HandlerStatusReachesTheClientAndAnErrorSendsNoResponse) {
  auto handler = MakeSyncStreamHandler<EchoRequest, EchoResponse, StreamKind::kClientStreaming>(
      [](ServerContext&, ServerReader<EchoRequest>*, EchoResponse* response) {
        response->set_message("never sent");
        return absl::NotFoundError("no such thing");
      });
  std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
  EchoResponse response;
  ClientWriter<EchoRequest> writer(call->client(), &response);
  absl::Status status = writer.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no such thing");
  EXPECT_EQ(call->server_messages_written(), 0);
  EXPECT_FALSE(response.has_message());
}

TEST_F(StreamHandlersTest, ServerStreamingWithoutARequestIsInternal) {
  auto handler = SyncCount();
  std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
  ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client());
  ASSERT_TRUE(stream.WritesDone());
  absl::Status status = stream.Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kInternal);
  EXPECT_NE(status.message().find("half-closed without sending its request"),
            absl::string_view::npos)
      << status;
}

TEST_F(StreamHandlersTest, UnaryCallOfAStreamingMethodIsUnimplementedNamingTheKind) {
  auto handler = SyncEcho();
  ServerContext context;
  context.set_service_name("test.Chat");
  context.set_method_name("Talk");
  EchoRequest request = Req("x");
  EchoResponse response;
  absl::Status got;
  handler->Call(context, request, &response, Responder(std::make_shared<RecordingCompleter>(&got)));
  EXPECT_EQ(got.code(), absl::StatusCode::kUnimplemented);
  EXPECT_EQ(got.message(),
            "test.Chat/Talk is a bidirectional streaming method; call it over a protocol with "
            "streams (gRPC)");
}

// ------------------------------------------------------------------ Callback

class SumReactor : public ServerReadReactor<EchoRequest> {
 public:
  SumReactor(EchoResponse* response, std::atomic<int>* deleted)
      : response_(response), deleted_(deleted) {
    StartRead(&request_);  // before the framework took it: queued
  }
  ~SumReactor() override { deleted_->fetch_add(1); }
  void OnReadDone(bool ok) override {
    if (!ok) {
      response_->set_message(sum_);
      Finish(absl::OkStatus());
      return;
    }
    sum_ += request_.message();
    StartRead(&request_);
  }

 private:
  EchoResponse* const response_;
  std::atomic<int>* const deleted_;
  EchoRequest request_;
  std::string sum_;
};

class CountReactor : public ServerWriteReactor<EchoResponse> {
 public:
  explicit CountReactor(const EchoRequest& request) : request_(request) { Next(); }
  void OnWriteDone(bool ok) override {
    if (!ok) return Finish(absl::CancelledError());
    Next();
  }

 private:
  void Next() {
    if (sent_ == request_.code()) return Finish(absl::OkStatus());
    response_.set_message(request_.message() + std::to_string(sent_++));
    StartWrite(&response_);
  }
  const EchoRequest& request_;
  EchoResponse response_;
  int sent_ = 0;
};

class EchoReactor : public ServerBidiReactor<EchoRequest, EchoResponse> {
 public:
  explicit EchoReactor(std::vector<std::string>* log) : log_(log) { StartRead(&request_); }
  ~EchoReactor() override { log_->push_back("deleted"); }
  void OnReadDone(bool ok) override {
    log_->push_back(ok ? "read" : "read-end");
    if (!ok) return Finish(absl::OkStatus());
    response_.set_message(request_.message());
    StartWrite(&response_);
  }
  void OnWriteDone(bool ok) override {
    log_->push_back("written");
    if (!ok) return Finish(absl::CancelledError());
    StartRead(&request_);
  }
  void OnCancel() override { log_->push_back("cancel"); }
  void OnDone() override { log_->push_back("done"); }

 private:
  std::vector<std::string>* const log_;
  EchoRequest request_;
  EchoResponse response_;
};

TEST_F(StreamHandlersTest, CallbackClientStreamingReactorSendsTheResponseAndIsDeleted) {
  std::atomic<int> deleted{0};
  auto handler = MakeCallbackStreamHandler<EchoRequest, EchoResponse, StreamKind::kClientStreaming>(
      [&deleted](ServerContext&, EchoResponse* response) {
        return std::make_unique<SumReactor>(response, &deleted);
      });
  EXPECT_EQ(handler->execution_mode(), MethodHandler::ExecutionMode::kIoLoop);
  ExpectClientStreamingSums(std::move(handler));
  EXPECT_EQ(deleted.load(), 1);
}

TEST_F(StreamHandlersTest, CallbackServerStreamingReactorGetsTheRequest) {
  auto handler = MakeCallbackStreamHandler<EchoRequest, EchoResponse, StreamKind::kServerStreaming>(
      [](ServerContext&, const EchoRequest& request) {
        return std::make_unique<CountReactor>(request);
      });
  ExpectServerStreamingCounts(std::move(handler));
}

TEST_F(StreamHandlersTest, CallbackBidiReactionsComeInOrderAndOnDoneLast) {
  std::vector<std::string> log;  // written on the loop; read after the call ended
  auto handler = MakeCallbackStreamHandler<EchoRequest, EchoResponse, StreamKind::kBidiStreaming>(
      [&log](ServerContext&) { return std::make_unique<EchoReactor>(&log); });
  ExpectBidiEchoes(std::move(handler));
  DrainLoop();
  EXPECT_EQ(log, (std::vector<std::string>{"read", "written", "read", "written", "read", "written",
                                           "read-end", "done", "deleted"}));
}

TEST_F(StreamHandlersTest, CallbackReactorSeesCancelOnceThenItsFailedRead) {
  std::vector<std::string> log;
  netpoll::Notification deleted;
  class Reactor : public EchoReactor {
   public:
    Reactor(std::vector<std::string>* log, netpoll::Notification* deleted)
        : EchoReactor(log), deleted_(deleted) {}
    ~Reactor() override { deleted_->Notify(); }

   private:
    netpoll::Notification* const deleted_;
  };
  auto handler = MakeCallbackStreamHandler<EchoRequest, EchoResponse, StreamKind::kBidiStreaming>(
      [&](ServerContext&) { return std::make_unique<Reactor>(&log, &deleted); });
  std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
  {
    ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client());
    EchoResponse response;
    ASSERT_TRUE(stream.Write(Req("one")));
    ASSERT_TRUE(stream.Read(&response));
    stream.Cancel();
    EXPECT_EQ(stream.Finish().code(), absl::StatusCode::kCancelled);
  }
  deleted.WaitForNotification();
  DrainLoop();  // ~EchoReactor runs after ~Reactor's Notify
  EXPECT_EQ(log,
            (std::vector<std::string>{"read", "written", "cancel", "read-end", "done", "deleted"}));
  EXPECT_TRUE(call->server()->context().IsCancelled());
}

TEST_F(StreamHandlersTest, CallbackHandlerReturningNoReactorFinishesWithInternal) {
  auto handler = MakeCallbackStreamHandler<EchoRequest, EchoResponse, StreamKind::kBidiStreaming>(
      [](ServerContext&) {
        return std::unique_ptr<ServerBidiReactor<EchoRequest, EchoResponse>>();
      });
  std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
  ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client());
  EXPECT_EQ(stream.Finish().code(), absl::StatusCode::kInternal);
}

// ------------------------------------------------------------------ Coroutine

TEST_F(StreamHandlersTest, CoroutineClientStreamingResumesOnEachRequest) {
  auto handler =
      MakeCoroutineStreamHandler<EchoRequest, EchoResponse, StreamKind::kClientStreaming>(
          [](ServerContext&, ServerStreamReader<EchoRequest>& reader,
             EchoResponse* response) -> Task<absl::Status> {
            std::string sum;
            while (std::optional<EchoRequest> request = co_await reader.Read()) {
              sum += request->message();
            }
            response->set_message(sum);
            co_return absl::OkStatus();
          });
  EXPECT_EQ(handler->execution_mode(), MethodHandler::ExecutionMode::kIoLoop);
  ExpectClientStreamingSums(std::move(handler));
}

TEST_F(StreamHandlersTest, CoroutineServerStreamingWritesEveryResponse) {
  auto handler =
      MakeCoroutineStreamHandler<EchoRequest, EchoResponse, StreamKind::kServerStreaming>(
          [](ServerContext&, const EchoRequest& request,
             ServerStreamWriter<EchoResponse>& writer) -> Task<absl::Status> {
            for (int i = 0; i < request.code(); ++i) {
              EchoResponse response;
              response.set_message(request.message() + std::to_string(i));
              if (!co_await writer.Write(response)) co_return absl::CancelledError();
            }
            co_return absl::OkStatus();
          });
  ExpectServerStreamingCounts(std::move(handler));
}

TEST_F(StreamHandlersTest, CoroutineBidiResumesOnTheLoopAfterEachAwait) {
  std::atomic<int> off_loop{0};
  netpoll::EventLoop* const the_loop = loop();
  auto handler = MakeCoroutineStreamHandler<EchoRequest, EchoResponse, StreamKind::kBidiStreaming>(
      [&off_loop, the_loop](ServerContext&,
                            ServerStream<EchoRequest, EchoResponse>& stream) -> Task<absl::Status> {
        while (std::optional<EchoRequest> request = co_await stream.Read()) {
          if (!the_loop->IsInLoopThread()) off_loop.fetch_add(1);
          EchoResponse response;
          response.set_message(request->message());
          if (!co_await stream.Write(response)) co_return absl::CancelledError();
          if (!the_loop->IsInLoopThread()) off_loop.fetch_add(1);
        }
        co_return absl::OkStatus();
      });
  ExpectBidiEchoes(std::move(handler));
  EXPECT_EQ(off_loop.load(), 0);
}

TEST_F(StreamHandlersTest, CoroutineWriteFailsAfterTheClientCancelled) {
  netpoll::Notification write_failed;
  auto handler =
      MakeCoroutineStreamHandler<EchoRequest, EchoResponse, StreamKind::kServerStreaming>(
          [&write_failed](ServerContext& context, const EchoRequest&,
                          ServerStreamWriter<EchoResponse>& writer) -> Task<absl::Status> {
            EchoResponse response;
            response.set_message("m");
            while (co_await writer.Write(response)) {
            }
            EXPECT_TRUE(context.IsCancelled());
            write_failed.Notify();
            co_return absl::CancelledError();
          });
  std::shared_ptr<FakeStreamCall> call = Serve(std::move(handler));
  {
    ClientReader<EchoResponse> reader(call->client(), Req("x"));
    EchoResponse response;
    ASSERT_TRUE(reader.Read(&response));
    // Dropping the reader unfinished cancels the call.
  }
  write_failed.WaitForNotification();
  DrainLoop();
  EXPECT_EQ(call->server_finish_calls(), 1);
}

}  // namespace
}  // namespace nprpc
