// Streaming RPCs end to end over gRPC: the generated bases of all three
// server styles (sync, callback reactors, coroutines) for every streaming
// kind, called through the generated stubs in their three styles on a
// `protocol = "grpc"` channel (tests/codegen/streaming.proto's Chat); over
// h2c, TLS and mutual TLS (tests/harness/transport_security.h; the TLS
// servers refuse plaintext).
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "rpc/channel.h"
#include "rpc/client_streaming.h"
#include "rpc/server.h"
#include "rpc/server_streaming.h"
#include "rpc/task.h"
#include "tests/codegen/streaming.nprpc.h"
#include "tests/harness/transport_security.h"

namespace nprpc {
namespace {

using ::corpus::streaming::Chat;
using ::corpus::streaming::Msg;
using testing::Transport;

Msg MakeMsg(const std::string& text, int count = 0) {
  Msg m;
  m.set_text(text);
  m.set_count(count);
  return m;
}

// Upload concatenates the texts; Watch sends `count` messages text0..;
// Talk echoes each message and ends with NOT_FOUND "bye".
class SyncChat final : public Chat::Service {
 public:
  absl::Status Upload(ServerContext&, ServerReader<Msg>* reader, Msg* response) override {
    Msg m;
    std::string all;
    while (reader->Read(&m)) all += m.text();
    response->set_text(all);
    return absl::OkStatus();
  }
  absl::Status Watch(ServerContext&, const Msg& request, ServerWriter<Msg>* writer) override {
    for (int i = 0; i < request.count(); ++i) {
      if (!writer->Write(MakeMsg(absl::StrCat(request.text(), i)))) break;
    }
    return absl::OkStatus();
  }
  absl::Status Talk(ServerContext&, ServerReaderWriter<Msg, Msg>* stream) override {
    Msg m;
    while (stream->Read(&m)) {
      if (!stream->Write(m)) break;
    }
    return absl::NotFoundError("bye");
  }
};

class CallbackChat final : public Chat::CallbackService {
 public:
  std::unique_ptr<ServerReadReactor<Msg>> Upload(ServerContext&, Msg* response) override {
    class Reactor : public ServerReadReactor<Msg> {
     public:
      explicit Reactor(Msg* response) : response_(response) { StartRead(&in_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          response_->set_text(all_);
          Finish(absl::OkStatus());
          return;
        }
        all_ += in_.text();
        StartRead(&in_);
      }

     private:
      Msg* const response_;
      Msg in_;
      std::string all_;
    };
    return std::make_unique<Reactor>(response);
  }
  std::unique_ptr<ServerWriteReactor<Msg>> Watch(ServerContext&, const Msg& request) override {
    class Reactor : public ServerWriteReactor<Msg> {
     public:
      explicit Reactor(const Msg& request) : text_(request.text()), left_(request.count()) {
        Next();
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(absl::CancelledError("the client went away"));
          return;
        }
        Next();
      }

     private:
      void Next() {
        if (sent_ == left_) {
          Finish(absl::OkStatus());
          return;
        }
        out_ = MakeMsg(absl::StrCat(text_, sent_++));
        StartWrite(&out_);
      }
      const std::string text_;
      const int left_;
      int sent_ = 0;
      Msg out_;
    };
    return std::make_unique<Reactor>(request);
  }
  std::unique_ptr<ServerBidiReactor<Msg, Msg>> Talk(ServerContext&) override {
    class Reactor : public ServerBidiReactor<Msg, Msg> {
     public:
      Reactor() { StartRead(&in_); }
      void OnReadDone(bool ok) override {
        if (!ok) {
          Finish(absl::NotFoundError("bye"));
          return;
        }
        out_ = in_;
        StartWrite(&out_);
      }
      void OnWriteDone(bool ok) override {
        if (!ok) {
          Finish(absl::CancelledError("the client went away"));
          return;
        }
        StartRead(&in_);
      }

     private:
      Msg in_, out_;
    };
    return std::make_unique<Reactor>();
  }
};

class CoroutineChat final : public Chat::CoroutineService {
 public:
  Task<absl::Status> Upload(ServerContext&, ServerStreamReader<Msg>& reader,
                            Msg* response) override {
    std::string all;
    while (std::optional<Msg> m = co_await reader.Read()) all += m->text();
    response->set_text(all);
    co_return absl::OkStatus();
  }
  Task<absl::Status> Watch(ServerContext&, const Msg& request,
                           ServerStreamWriter<Msg>& writer) override {
    for (int i = 0; i < request.count(); ++i) {
      if (!co_await writer.Write(MakeMsg(absl::StrCat(request.text(), i)))) break;
    }
    co_return absl::OkStatus();
  }
  Task<absl::Status> Talk(ServerContext&, ServerStream<Msg, Msg>& stream) override {
    while (std::optional<Msg> m = co_await stream.Read()) {
      if (!co_await stream.Write(*m)) break;
    }
    co_return absl::NotFoundError("bye");
  }
};

enum class Style { kSync, kCallback, kCoroutine };

class StreamingE2eTest : public ::testing::TestWithParam<std::tuple<Style, Transport>> {
 protected:
  void SetUp() override {
    const Transport transport = std::get<1>(GetParam());
    switch (std::get<0>(GetParam())) {
      case Style::kSync:
        service_ = std::make_unique<SyncChat>();
        break;
      case Style::kCallback:
        service_ = std::make_unique<CallbackChat>();
        break;
      case Style::kCoroutine:
        service_ = std::make_unique<CoroutineChat>();
        break;
    }
    ServerOptions server_options;
    server_options.tls = testing::ServerTls(transport);
    server_options.tls_required = transport != Transport::kPlaintext;
    server_ = std::make_unique<Server>(std::move(server_options));
    ASSERT_TRUE(server_->AddService(service_.get()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
    ChannelOptions options;
    options.protocol = "grpc";
    options.tls = testing::ClientTls(transport);
    auto channel = Channel::Create(server_->listen_address().ToString(), options);
    ASSERT_TRUE(channel.ok()) << channel.status();
    channel_ = *std::move(channel);
    stub_ = Chat::NewStub(channel_.get());
  }
  void TearDown() override {
    stub_.reset();
    channel_.reset();
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  std::unique_ptr<Service> service_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<Chat::Stub> stub_;
};

TEST_P(StreamingE2eTest, BidiPingPongEndsWithTheHandlersStatus) {
  auto stream = stub_->Talk();
  Msg m;
  for (const std::string& text : {std::string("a"), std::string("b"), std::string("c")}) {
    ASSERT_TRUE(stream->Write(MakeMsg(text)));
    ASSERT_TRUE(stream->Read(&m));
    EXPECT_EQ(m.text(), text);
  }
  EXPECT_TRUE(stream->WritesDone());
  EXPECT_FALSE(stream->Read(&m));
  const absl::Status status = stream->Finish();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound) << status;
  EXPECT_EQ(status.message(), "bye");
}

TEST_P(StreamingE2eTest, ServerStreamDeliversEveryMessageInOrder) {
  auto reader = stub_->Watch(MakeMsg("w", 100));
  Msg m;
  std::vector<std::string> got;
  while (reader->Read(&m)) got.push_back(m.text());
  ASSERT_EQ(got.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(got[i], absl::StrCat("w", i));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_P(StreamingE2eTest, EmptyServerStreamEndsOk) {
  auto reader = stub_->Watch(MakeMsg("none", 0));
  Msg m;
  EXPECT_FALSE(reader->Read(&m));
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_P(StreamingE2eTest, ClientStreamIsAggregatedAlsoWhenEmpty) {
  Msg response;
  auto writer = stub_->Upload(&response);
  for (const std::string& text : {std::string("x"), std::string("y"), std::string("z")}) {
    ASSERT_TRUE(writer->Write(MakeMsg(text)));
  }
  ASSERT_TRUE(writer->WritesDone());
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(response.text(), "xyz");

  Msg empty_response;
  auto empty = stub_->Upload(&empty_response);
  ASSERT_TRUE(empty->WritesDone());
  ASSERT_TRUE(empty->Finish().ok());
  EXPECT_EQ(empty_response.text(), "");
}

TEST_P(StreamingE2eTest, CoroutineClientStreamsAndReadsBack) {
  absl::StatusOr<Msg> uploaded =
      BlockOn([](Chat::StubInterface& stub) -> Task<absl::StatusOr<Msg>> {
        auto writer = co_await stub.UploadAsync();
        for (const char* text : {"p", "q"}) {
          if (!co_await writer.Write(MakeMsg(text))) co_return absl::InternalError("write failed");
        }
        co_return co_await writer.Finish();  // half-closes, then reads the response
      }(*stub_));
  ASSERT_TRUE(uploaded.ok()) << uploaded.status();
  EXPECT_EQ(uploaded->text(), "pq");
}

TEST_P(StreamingE2eTest, CallbackReactorReadsAServerStream) {
  class Reader : public ClientReadReactor<Msg> {
   public:
    void OnReadDone(bool ok) override {
      if (!ok) return;
      ++count;
      StartRead(&in);
    }
    void OnDone(const absl::Status& s) override {
      status = s;
      done.Notify();
    }
    Msg in;
    int count = 0;
    absl::Status status;
    netpoll::Notification done;
  } reader;
  reader.StartRead(&reader.in);
  stub_->Watch(MakeMsg("r", 7), &reader, CallOptions());
  reader.done.WaitForNotification();
  EXPECT_TRUE(reader.status.ok()) << reader.status;
  EXPECT_EQ(reader.count, 7);
}

std::string StyleName(Style style) {
  switch (style) {
    case Style::kSync:
      return "Sync";
    case Style::kCallback:
      return "Callback";
    case Style::kCoroutine:
      return "Coroutine";
  }
  return "Unknown";
}

INSTANTIATE_TEST_SUITE_P(AllServerStyles, StreamingE2eTest,
                         ::testing::Combine(::testing::Values(Style::kSync, Style::kCallback,
                                                              Style::kCoroutine),
                                            ::testing::ValuesIn(testing::kEveryTransport)),
                         [](const ::testing::TestParamInfo<std::tuple<Style, Transport>>& info) {
                           return absl::StrCat(StyleName(std::get<0>(info.param)), "_",
                                               testing::TransportName(std::get<1>(info.param)));
                         });

}  // namespace
}  // namespace nprpc
