#include "rpc/client_streaming.h"

#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "proto/echo.pb.h"
#include "rpc/server_streaming.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"
#include "rpc/testing/fake_stream.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::FakeStreamCall;

EchoRequest Req(const std::string& text, int code = 0) {
  EchoRequest r;
  r.set_message(text);
  r.set_code(code);
  return r;
}

// Servers on threads of their own, written with the sync server streams.
void ServeEcho(ServerStreamCore* core) {
  ServerReaderWriter<EchoResponse, EchoRequest> stream(core);
  EchoRequest request;
  while (stream.Read(&request)) {
    EchoResponse response;
    response.set_message(request.message());
    if (!stream.Write(response)) break;
  }
  core->Finish(absl::OkStatus());
}

void ServeCount(ServerStreamCore* core) {
  ServerReader<EchoRequest> reader(core);
  EchoRequest request;
  if (!reader.Read(&request)) return core->Finish(absl::InternalError("no request"));
  ServerWriter<EchoResponse> writer(core);
  for (int i = 0; i < request.code(); ++i) {
    EchoResponse response;
    response.set_message(request.message() + std::to_string(i));
    if (!writer.Write(response)) break;
  }
  core->Finish(absl::OkStatus());
}

void ServeSum(ServerStreamCore* core) {
  ServerReader<EchoRequest> reader(core);
  EchoRequest request;
  std::string sum;
  while (reader.Read(&request)) sum += request.message();
  EchoResponse response;
  response.set_message(sum);
  ServerWriter<EchoResponse>(core).Write(response);
  core->Finish(absl::OkStatus());
}

class ClientStreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "client-stream-test";
    loops_ = std::move(netpoll::EventLoopGroup::Create(options)).value();
  }
  void TearDown() override {
    for (std::thread& t : threads_) t.join();
    loops_->Stop();
  }

  netpoll::EventLoop* loop() { return loops_->loop(0); }

  std::shared_ptr<FakeStreamCall> Serve(void (*server)(ServerStreamCore*)) {
    std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
    threads_.emplace_back([server, core = call->server()] { server(core.get()); });
    return call;
  }

  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::vector<std::thread> threads_;
};

// ------------------------------------------------------------------ Sync

TEST_F(ClientStreamingTest, SyncReaderWriterPingPongsThenFinishesOk) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeEcho);
  ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client());
  EchoResponse response;
  for (const char* text : {"a", "b"}) {
    ASSERT_TRUE(stream.Write(Req(text)));
    ASSERT_TRUE(stream.Read(&response));
    EXPECT_EQ(response.message(), text);
  }
  EXPECT_TRUE(stream.WritesDone());
  EXPECT_FALSE(stream.Read(&response));
  EXPECT_TRUE(stream.Finish().ok());
  EXPECT_TRUE(stream.Finish().ok()) << "a second Finish returns the first status";
}

TEST_F(ClientStreamingTest, SyncWriterGetsTheResponseAtFinish) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeSum);
  EchoResponse response;
  ClientWriter<EchoRequest> writer(call->client(), &response);
  EXPECT_TRUE(writer.Write(Req("x")));
  EXPECT_TRUE(writer.Write(Req("y")));
  EXPECT_TRUE(writer.Finish().ok());  // half-closes by itself
  EXPECT_EQ(response.message(), "xy");
}

TEST_F(ClientStreamingTest, SyncWriterWithoutAResponseIsInternal) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  call->server()->Finish(absl::OkStatus());
  EchoResponse response;
  ClientWriter<EchoRequest> writer(call->client(), &response);
  EXPECT_FALSE(writer.Write(Req("late")));
  EXPECT_EQ(writer.Finish().code(), absl::StatusCode::kInternal);
}

TEST_F(ClientStreamingTest, SyncReaderSendsItsRequestAndReadsToTheEnd) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeCount);
  ClientReader<EchoResponse> reader(call->client(), Req("n", 2));
  EchoResponse response;
  std::vector<std::string> got;
  while (reader.Read(&response)) got.push_back(response.message());
  EXPECT_EQ(got, (std::vector<std::string>{"n0", "n1"}));
  EXPECT_TRUE(reader.Finish().ok());
}

TEST_F(ClientStreamingTest, SyncOperationsOnTheLoopThreadRefuseWithFailedPrecondition) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  auto stream = std::make_unique<ClientReaderWriter<EchoRequest, EchoResponse>>(call->client());
  netpoll::Notification done;
  bool read = true;
  bool written = true;
  absl::Status status;
  loop()->QueueInLoop([&] {
    EchoResponse response;
    read = stream->Read(&response);
    written = stream->Write(Req("x"));
    status = stream->Finish();
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_FALSE(read);
  EXPECT_FALSE(written);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_TRUE(call->ended()) << "the refused call is cancelled";
}

TEST_F(ClientStreamingTest, DroppingAnUnfinishedSyncStreamCancelsTheCall) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  { ClientReaderWriter<EchoRequest, EchoResponse> stream(call->client()); }
  EXPECT_TRUE(call->ended());
  EXPECT_TRUE(call->server()->context().IsCancelled());
}

// ------------------------------------------------------------------ Callback

class LoggingBidi : public ClientBidiReactor<EchoRequest, EchoResponse> {
 public:
  void OnReadDone(bool ok) override {
    Log(ok ? "read:" + in_.message() : "read-end");
    if (ok) StartRead(&in_);
  }
  void OnWriteDone(bool ok) override {
    Log(ok ? "written" : "write-failed");
    if (ok) StartWritesDone();
  }
  void OnWritesDoneDone(bool ok) override { Log(ok ? "writes-done" : "writes-done-failed"); }
  void OnDone(const absl::Status& status) override {
    Log("done:" + std::string(absl::StatusCodeToString(status.code())));
    done_.Notify();
  }

  std::vector<std::string> Wait() {
    done_.WaitForNotification();
    netpoll::MutexLock lock(&mu_);
    return log_;
  }

  EchoRequest out_;
  EchoResponse in_;

 private:
  void Log(std::string entry) {
    netpoll::MutexLock lock(&mu_);
    log_.push_back(std::move(entry));
  }

  netpoll::Notification done_;
  netpoll::Mutex mu_;
  std::vector<std::string> log_ ABSL_GUARDED_BY(mu_);
};

TEST_F(ClientStreamingTest, BidiReactorReactsInOrderAndOnDoneComesLast) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeEcho);
  LoggingBidi reactor;
  reactor.out_ = Req("hi");
  // Operations started before the call are queued until it starts.
  reactor.StartWrite(&reactor.out_);
  reactor.StartRead(&reactor.in_);
  stream_internal::ClientReactorDriver::Start(call->client(), &reactor, nullptr, nullptr);
  std::vector<std::string> log = reactor.Wait();
  ASSERT_EQ(log.size(), 5u) << ::testing::PrintToString(log);
  EXPECT_EQ(log.back(), "done:OK");
  // The write side and the read side interleave; each is in order.
  std::vector<std::string> reads;
  std::vector<std::string> writes;
  for (const std::string& entry : log) {
    if (entry.rfind("read", 0) == 0) reads.push_back(entry);
    if (entry.rfind("writ", 0) == 0) writes.push_back(entry);
  }
  EXPECT_EQ(reads, (std::vector<std::string>{"read:hi", "read-end"}));
  EXPECT_EQ(writes, (std::vector<std::string>{"written", "writes-done"}));
}

TEST_F(ClientStreamingTest, ReactorMayDeleteItselfInOnDone) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeCount);
  netpoll::Notification deleted;
  class Reader : public ClientReadReactor<EchoResponse> {
   public:
    explicit Reader(netpoll::Notification* deleted) : deleted_(deleted) {}
    ~Reader() override { deleted_->Notify(); }
    void OnReadDone(bool ok) override {
      if (ok) {
        ++count_;
        StartRead(&in_);
      }
    }
    void OnDone(const absl::Status& status) override {
      EXPECT_TRUE(status.ok()) << status;
      EXPECT_EQ(count_, 3);
      delete this;
    }
    EchoResponse in_;

   private:
    netpoll::Notification* const deleted_;
    int count_ = 0;
  };
  auto* reader = new Reader(&deleted);
  reader->StartRead(&reader->in_);
  EchoRequest request = Req("r", 3);
  stream_internal::ClientReactorDriver::Start(call->client(), reader, &request, nullptr);
  deleted.WaitForNotification();
}

TEST_F(ClientStreamingTest, WriteReactorGetsTheResponseBeforeOnDone) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeSum);
  class Writer : public ClientWriteReactor<EchoRequest> {
   public:
    void OnWriteDone(bool ok) override {
      if (ok && ++sent_ < 3) {
        StartWrite(&out_);
      } else {
        StartWritesDone();
      }
    }
    void OnDone(const absl::Status& status) override {
      status_ = status;
      done_.Notify();
    }
    EchoRequest out_ = Req("z");
    netpoll::Notification done_;
    absl::Status status_;

   private:
    int sent_ = 0;
  };
  Writer writer;
  EchoResponse response;
  writer.StartWrite(&writer.out_);
  stream_internal::ClientReactorDriver::Start(call->client(), &writer, nullptr, &response);
  writer.done_.WaitForNotification();
  EXPECT_TRUE(writer.status_.ok()) << writer.status_;
  EXPECT_EQ(response.message(), "zzz");
}

TEST_F(ClientStreamingTest, ReactorCancelledBeforeTheCallEndsCancelled) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  LoggingBidi reactor;
  reactor.Cancel();
  stream_internal::ClientReactorDriver::Start(call->client(), &reactor, nullptr, nullptr);
  EXPECT_EQ(reactor.Wait(), (std::vector<std::string>{"done:CANCELLED"}));
  EXPECT_TRUE(call->server()->context().IsCancelled());
}

TEST_F(ClientStreamingTest, ReactorSeesTheServersErrorAfterItsReadsEnd) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  LoggingBidi reactor;
  reactor.StartRead(&reactor.in_);
  stream_internal::ClientReactorDriver::Start(call->client(), &reactor, nullptr, nullptr);
  call->server()->Finish(absl::PermissionDeniedError("no"));
  EXPECT_EQ(reactor.Wait(), (std::vector<std::string>{"read-end", "done:PERMISSION_DENIED"}));
}

// ------------------------------------------------------------------ Coroutine

Task<std::vector<std::string>> TalkAsync(ClientStream<EchoRequest, EchoResponse>& stream,
                                         netpoll::EventLoop* loop) {
  std::vector<std::string> log;
  for (const char* text : {"one", "two"}) {
    EchoRequest request = Req(text);
    if (!co_await stream.Write(request)) log.push_back("write-failed");
    std::optional<EchoResponse> response = co_await stream.Read();
    log.push_back(response.has_value() ? response->message() : "end");
    if (!loop->IsInLoopThread()) log.push_back("not-on-loop");
  }
  log.push_back(co_await stream.WritesDone() ? "writes-done" : "writes-done-failed");
  std::optional<EchoResponse> last = co_await stream.Read();
  log.push_back(last.has_value() ? "unexpected" : "end");
  absl::Status status = co_await stream.Finish();
  log.push_back(std::string(absl::StatusCodeToString(status.code())));
  co_return log;
}

TEST_F(ClientStreamingTest, CoroutineBidiResumesOnTheLoopAndFinishes) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeEcho);
  ClientStream<EchoRequest, EchoResponse> stream(call->client());
  EXPECT_EQ(BlockOn(TalkAsync(stream, loop())),
            (std::vector<std::string>{"one", "two", "writes-done", "end", "OK"}));
}

Task<std::vector<std::string>> ReadAllAsync(ClientStreamReader<EchoResponse> reader) {
  std::vector<std::string> got;
  while (std::optional<EchoResponse> response = co_await reader.Read()) {
    got.push_back(response->message());
  }
  absl::Status status = co_await reader.Finish();
  got.push_back(std::string(absl::StatusCodeToString(status.code())));
  co_return got;
}

TEST_F(ClientStreamingTest, CoroutineReaderReadsEveryResponse) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeCount);
  EXPECT_EQ(BlockOn(ReadAllAsync(ClientStreamReader<EchoResponse>(call->client(), Req("c", 2)))),
            (std::vector<std::string>{"c0", "c1", "OK"}));
}

Task<absl::StatusOr<EchoResponse>> SumAsync(ClientStreamWriter<EchoRequest, EchoResponse> writer) {
  for (const char* text : {"p", "q"}) {
    EchoRequest request = Req(text);
    if (!co_await writer.Write(request)) co_return absl::InternalError("write failed");
  }
  co_return co_await writer.Finish();
}

TEST_F(ClientStreamingTest, CoroutineWriterFinishYieldsTheResponse) {
  std::shared_ptr<FakeStreamCall> call = Serve(ServeSum);
  absl::StatusOr<EchoResponse> response =
      BlockOn(SumAsync(ClientStreamWriter<EchoRequest, EchoResponse>(call->client())));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->message(), "pq");
}

TEST_F(ClientStreamingTest, DroppingAnUnfinishedCoroutineStreamCancelsTheCall) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  { ClientStream<EchoRequest, EchoResponse> stream(call->client()); }
  EXPECT_TRUE(call->server()->context().IsCancelled());
}

}  // namespace
}  // namespace nprpc
