// The generated streaming code: each server base (sync, callback, coroutine)
// serves each kind over an in-memory stream; unoverridden methods answer
// UNIMPLEMENTED; the stub's three forms start calls through
// Channel::NewStream (which fails clearly over baidu_std); the mock mocks
// every form.
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/client_streaming.h"
#include "rpc/server_context.h"
#include "rpc/server_streaming.h"
#include "rpc/service.h"
#include "rpc/stream_core.h"
#include "rpc/task.h"
#include "rpc/testing/fake_stream.h"
#include "tests/codegen/streaming.nprpc.h"
#include "tests/codegen/streaming_mock.nprpc.h"

namespace {

using ::corpus::streaming::Chat;
using ::corpus::streaming::Msg;
using nprpc::testing::FakeStreamCall;

Msg M(const std::string& text, int count = 0) {
  Msg m;
  m.set_text(text);
  m.set_count(count);
  return m;
}

// ------------------------------------------------------------------ Services

class SyncChat : public Chat::Service {
 public:
  absl::Status Upload(nprpc::ServerContext&, nprpc::ServerReader<Msg>* reader,
                      Msg* response) override {
    Msg m;
    std::string sum;
    while (reader->Read(&m)) sum += m.text();
    response->set_text(sum);
    return absl::OkStatus();
  }
  absl::Status Watch(nprpc::ServerContext&, const Msg& request,
                     nprpc::ServerWriter<Msg>* writer) override {
    for (int i = 0; i < request.count(); ++i) {
      if (!writer->Write(M(request.text() + std::to_string(i)))) break;
    }
    return absl::OkStatus();
  }
  absl::Status Talk(nprpc::ServerContext&, nprpc::ServerReaderWriter<Msg, Msg>* stream) override {
    Msg m;
    while (stream->Read(&m)) {
      if (!stream->Write(m)) break;
    }
    return absl::OkStatus();
  }
};

class CallbackChat : public Chat::CallbackService {
 public:
  std::unique_ptr<nprpc::ServerReadReactor<Msg>> Upload(nprpc::ServerContext&,
                                                        Msg* response) override {
    class Sum : public nprpc::ServerReadReactor<Msg> {
     public:
      explicit Sum(Msg* response) : response_(response) { StartRead(&in_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(absl::OkStatus());
        response_->set_text(response_->text() + in_.text());
        StartRead(&in_);
      }

     private:
      Msg* const response_;
      Msg in_;
    };
    return std::make_unique<Sum>(response);
  }
  std::unique_ptr<nprpc::ServerWriteReactor<Msg>> Watch(nprpc::ServerContext&,
                                                        const Msg& request) override {
    class Count : public nprpc::ServerWriteReactor<Msg> {
     public:
      explicit Count(const Msg& request) : request_(request) { Next(); }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(absl::CancelledError());
        Next();
      }

     private:
      void Next() {
        if (sent_ == request_.count()) return Finish(absl::OkStatus());
        out_ = M(request_.text() + std::to_string(sent_++));
        StartWrite(&out_);
      }
      const Msg& request_;
      Msg out_;
      int sent_ = 0;
    };
    return std::make_unique<Count>(request);
  }
  std::unique_ptr<nprpc::ServerBidiReactor<Msg, Msg>> Talk(nprpc::ServerContext&) override {
    class Echo : public nprpc::ServerBidiReactor<Msg, Msg> {
     public:
      Echo() { StartRead(&m_); }
      void OnReadDone(bool ok) override {
        if (!ok) return Finish(absl::OkStatus());
        StartWrite(&m_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) return Finish(absl::CancelledError());
        StartRead(&m_);
      }

     private:
      Msg m_;
    };
    return std::make_unique<Echo>();
  }
};

class CoroutineChat : public Chat::CoroutineService {
 public:
  nprpc::Task<absl::Status> Upload(nprpc::ServerContext&, nprpc::ServerStreamReader<Msg>& reader,
                                   Msg* response) override {
    std::string sum;
    while (std::optional<Msg> m = co_await reader.Read()) sum += m->text();
    response->set_text(sum);
    co_return absl::OkStatus();
  }
  nprpc::Task<absl::Status> Watch(nprpc::ServerContext&, const Msg& request,
                                  nprpc::ServerStreamWriter<Msg>& writer) override {
    for (int i = 0; i < request.count(); ++i) {
      Msg out = M(request.text() + std::to_string(i));
      if (!co_await writer.Write(out)) break;
    }
    co_return absl::OkStatus();
  }
  nprpc::Task<absl::Status> Talk(nprpc::ServerContext&,
                                 nprpc::ServerStream<Msg, Msg>& stream) override {
    while (std::optional<Msg> m = co_await stream.Read()) {
      if (!co_await stream.Write(*m)) break;
    }
    co_return absl::OkStatus();
  }
};

// ------------------------------------------------------------------ Fixture

class GeneratedStreamingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "codegen-stream";
    loops_ = std::move(netpoll::EventLoopGroup::Create(options)).value();
  }
  void TearDown() override {
    for (std::thread& t : threads_) t.join();
    loops_->Stop();
  }

  // A call of `service`'s `method`, run where a server would run it.
  std::shared_ptr<FakeStreamCall> Serve(nprpc::Service& service, const std::string& method) {
    nprpc::MethodHandler* handler = service.FindMethod(method);
    EXPECT_NE(handler, nullptr);
    nprpc::testing::FakeStreamOptions options;
    options.service = std::string(Chat::kServiceName);
    options.method = method;
    std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loops_->loop(0), options);
    std::shared_ptr<nprpc::ServerStreamCore> server = call->server();
    if (handler->execution_mode() == nprpc::MethodHandler::ExecutionMode::kWorkerPool) {
      threads_.emplace_back([handler, server] { handler->CallStream(server); });
    } else {
      loops_->loop(0)->QueueInLoop([handler, server] { handler->CallStream(server); });
    }
    return call;
  }

  void ExpectServesEveryKind(nprpc::Service& service) {
    EXPECT_EQ(service.FindMethod("Hello")->stream_kind(), nprpc::StreamKind::kUnary);
    EXPECT_EQ(service.FindMethod("Upload")->stream_kind(), nprpc::StreamKind::kClientStreaming);
    EXPECT_EQ(service.FindMethod("Watch")->stream_kind(), nprpc::StreamKind::kServerStreaming);
    EXPECT_EQ(service.FindMethod("Talk")->stream_kind(), nprpc::StreamKind::kBidiStreaming);
    {
      std::shared_ptr<FakeStreamCall> call = Serve(service, "Upload");
      Msg response;
      nprpc::ClientWriter<Msg> writer(call->client(), &response);
      EXPECT_TRUE(writer.Write(M("a")));
      EXPECT_TRUE(writer.Write(M("b")));
      EXPECT_TRUE(writer.Finish().ok());
      EXPECT_EQ(response.text(), "ab");
    }
    {
      std::shared_ptr<FakeStreamCall> call = Serve(service, "Watch");
      nprpc::ClientReader<Msg> reader(call->client(), M("w", 2));
      Msg m;
      std::vector<std::string> got;
      while (reader.Read(&m)) got.push_back(m.text());
      EXPECT_EQ(got, (std::vector<std::string>{"w0", "w1"}));
      EXPECT_TRUE(reader.Finish().ok());
    }
    {
      std::shared_ptr<FakeStreamCall> call = Serve(service, "Talk");
      nprpc::ClientReaderWriter<Msg, Msg> stream(call->client());
      Msg m;
      ASSERT_TRUE(stream.Write(M("ping")));
      ASSERT_TRUE(stream.Read(&m));
      EXPECT_EQ(m.text(), "ping");
      EXPECT_TRUE(stream.WritesDone());
      EXPECT_FALSE(stream.Read(&m));
      EXPECT_TRUE(stream.Finish().ok());
    }
  }

  void ExpectUnimplemented(nprpc::Service& service) {
    for (const char* method : {"Upload", "Watch", "Talk"}) {
      std::shared_ptr<FakeStreamCall> call = Serve(service, method);
      nprpc::ClientReaderWriter<Msg, Msg> stream(call->client());
      stream.Write(M("x"));  // a server-streaming handler waits for its request
      stream.WritesDone();
      absl::Status status = stream.Finish();
      EXPECT_EQ(status.code(), absl::StatusCode::kUnimplemented) << method << ": " << status;
      EXPECT_NE(status.message().find(method), absl::string_view::npos) << status;
    }
  }

  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::vector<std::thread> threads_;
};

TEST_F(GeneratedStreamingTest, SyncServiceServesEveryKind) {
  SyncChat service;
  ExpectServesEveryKind(service);
}

TEST_F(GeneratedStreamingTest, CallbackServiceServesEveryKind) {
  CallbackChat service;
  ExpectServesEveryKind(service);
}

TEST_F(GeneratedStreamingTest, CoroutineServiceServesEveryKind) {
  CoroutineChat service;
  ExpectServesEveryKind(service);
}

TEST_F(GeneratedStreamingTest, UnoverriddenStreamingMethodsAnswerUnimplemented) {
  Chat::Service sync;
  ExpectUnimplemented(sync);
  Chat::CallbackService callback;
  ExpectUnimplemented(callback);
  Chat::CoroutineService coroutine;
  ExpectUnimplemented(coroutine);
}

// Over baidu_std, every form of a streaming stub call fails with a clear
// status from Channel::NewStream.
TEST_F(GeneratedStreamingTest, StubFormsOverBaiduStdFailClearly) {
  nprpc::ChannelOptions options;
  options.loops = loops_.get();
  std::unique_ptr<nprpc::Channel> channel =
      std::move(nprpc::Channel::Create("127.0.0.1:1", options)).value();
  std::unique_ptr<Chat::Stub> stub = Chat::NewStub(channel.get());

  std::unique_ptr<nprpc::ClientReaderWriter<Msg, Msg>> sync = stub->Talk();
  EXPECT_FALSE(sync->Write(M("x")));
  absl::Status status = sync->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(status.message().find("corpus.streaming.Chat/Talk"), absl::string_view::npos) << status;

  class Reader : public nprpc::ClientReadReactor<Msg> {
   public:
    void OnDone(const absl::Status& s) override {
      status = s;
      done.Notify();
    }
    absl::Status status;
    netpoll::Notification done;
  };
  Reader reader;
  stub->Watch(M("w", 1), &reader, nprpc::CallOptions());
  reader.Cancel();  // nothing is read: end it to reach OnDone
  reader.done.WaitForNotification();
  EXPECT_FALSE(reader.status.ok());

  absl::StatusOr<Msg> uploaded =
      nprpc::BlockOn([](Chat::StubInterface& s) -> nprpc::Task<absl::StatusOr<Msg>> {
        nprpc::ClientStreamWriter<Msg, Msg> writer = co_await s.UploadAsync();
        Msg m = M("u");
        co_await writer.Write(m);
        co_return co_await writer.Finish();
      }(*stub));
  EXPECT_EQ(uploaded.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(GeneratedStreamingTest, MockMocksEveryStreamingForm) {
  corpus::streaming::MockChatStub mock;
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loops_->loop(0));
  call->server()->Finish(absl::NotFoundError("mocked"));
  EXPECT_CALL(mock, Talk(::testing::_))
      .WillOnce(::testing::Return(::testing::ByMove(
          std::make_unique<nprpc::ClientReaderWriter<Msg, Msg>>(call->client()))));
  EXPECT_CALL(mock, Watch(::testing::_, ::testing::_, ::testing::_)).Times(1);
  Chat::StubInterface& stub = mock;  // the defaults of the arguments live there
  std::unique_ptr<nprpc::ClientReaderWriter<Msg, Msg>> stream = stub.Talk();
  EXPECT_EQ(stream->Finish().code(), absl::StatusCode::kNotFound);
  nprpc::ClientReadReactor<Msg> reactor;
  stub.Watch(M("w"), &reactor, nprpc::CallOptions());
}

}  // namespace
