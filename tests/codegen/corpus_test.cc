// The corpus compiles and links: every generated header is included, every
// stub and server base is instantiated, and the names come out as
// documented (keywords escaped, wire names kept).
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/channel.h"
#include "rpc/server_context.h"
#include "rpc/service.h"
#include "rpc/task.h"
#include "tests/codegen/deep/package.nprpc.h"
#include "tests/codegen/deep/package_mock.nprpc.h"
#include "tests/codegen/keywords.nprpc.h"
#include "tests/codegen/keywords_mock.nprpc.h"
#include "tests/codegen/messages_only.nprpc.h"
#include "tests/codegen/no_package.nprpc.h"
#include "tests/codegen/no_package_mock.nprpc.h"
#include "tests/codegen/other.nprpc.h"
#include "tests/codegen/proto2.nprpc.h"

namespace {

using ::testing::_;
using ::testing::Return;

namespace deep = ::corpus::deep::er::than::most;
namespace kw = ::kw::names;

// Each style of base, overriding one method, compiles and registers every
// method under its wire name.
class GreeterImpl : public Greeter::Service {
 public:
  absl::Status SayHello(nprpc::ServerContext&, const HelloRequest& request,
                        HelloReply* reply) override {
    reply->set_message("hello " + request.name());
    return absl::OkStatus();
  }
};

class ClockImpl : public deep::Clock::CoroutineService {
 public:
  nprpc::Task<absl::Status> Ping(nprpc::ServerContext&, const google::protobuf::Empty&,
                                 google::protobuf::Empty*) override {
    co_return absl::OkStatus();
  }
};

class MixerImpl : public deep::Mixer::CallbackService {
 public:
  void Mix(nprpc::ServerContext&, const other::pkg::Shared& request,
           deep::Outer_Inner_Innermost* response, nprpc::Responder done) override {
    response->set_text(request.text());
    done.Finish(absl::OkStatus());
  }
};

class KeywordImpl : public kw::Stub_::Service {
 public:
  absl::Status delete_(nprpc::ServerContext&, const kw::Msg&, kw::Msg* out) override {
    out->set_text("deleted");
    return absl::OkStatus();
  }
  absl::Status new_(nprpc::ServerContext&, const kw::class_& in, kw::class_* out) override {
    out->set_int_(in.int_() + 1);
    return absl::OkStatus();
  }
};

// Runs a method of `service` through its MethodHandler, as the server does.
absl::Status Invoke(nprpc::Service& service, const std::string& method,
                    const google::protobuf::Message& request, google::protobuf::Message* response) {
  nprpc::MethodHandler* handler = service.FindMethod(method);
  if (handler == nullptr) return absl::NotFoundError(method);
  class Completer : public nprpc::CallCompleter {
   public:
    explicit Completer(absl::Status* out) : out_(out) {}
    void Complete(absl::Status status) override { *out_ = std::move(status); }

   private:
    absl::Status* out_;
  };
  absl::Status result = absl::InternalError("not completed");
  nprpc::ServerContext context;
  handler->Call(context, request, response, nprpc::Responder(std::make_shared<Completer>(&result)));
  return result;
}

TEST(CorpusTest, ServiceNamesOnTheWireAreProtoFullNames) {
  EXPECT_EQ(Greeter::kServiceName, "Greeter");
  EXPECT_EQ(deep::Clock::kServiceName, "corpus.deep.er.than.most.Clock");
  EXPECT_EQ(kw::Stub_::kServiceName, "kw.names.Stub");
  EXPECT_EQ(kw::delete_::kServiceName, "kw.names.delete");
  EXPECT_EQ(corpus::two::Second::kServiceName, "corpus.two.Second");
  ASSERT_NE(deep::Mixer::descriptor(), nullptr);
  EXPECT_EQ(deep::Mixer::descriptor()->full_name(), "corpus.deep.er.than.most.Mixer");
  ASSERT_NE(Greeter::descriptor(), nullptr);
  EXPECT_EQ(corpus::two::Legacy::descriptor()->method(0)->name(), "Get");
}

TEST(CorpusTest, BasesRegisterEveryMethodUnderItsWireName) {
  KeywordImpl keywords;
  EXPECT_EQ(keywords.full_name(), "kw.names.Stub");
  EXPECT_EQ(keywords.method_names(),
            (std::vector<std::string>{"AddMethod", "Echo", "EchoAsync", "FindMethod", "NewStub",
                                      "Service", "Stub", "StubInterface", "delete", "descriptor",
                                      "kServiceName", "new"}));
  kw::Msg msg;
  EXPECT_TRUE(Invoke(keywords, "delete", msg, &msg).ok());
  EXPECT_EQ(msg.text(), "deleted");
  kw::class_ in, out;
  in.set_int_(41);
  EXPECT_TRUE(Invoke(keywords, "new", in, &out).ok());
  EXPECT_EQ(out.int_(), 42);
  EXPECT_EQ(Invoke(keywords, "Echo", msg, &msg).code(), absl::StatusCode::kUnimplemented);
}

TEST(CorpusTest, EveryStyleRuns) {
  GreeterImpl greeter;
  HelloRequest hello;
  hello.set_name("corpus");
  HelloReply reply;
  EXPECT_TRUE(Invoke(greeter, "SayHello", hello, &reply).ok());
  EXPECT_EQ(reply.message(), "hello corpus");

  ClockImpl clock;
  google::protobuf::Empty empty;
  EXPECT_TRUE(Invoke(clock, "Ping", empty, &empty).ok());
  google::protobuf::Timestamp now;
  EXPECT_EQ(Invoke(clock, "Now", empty, &now).code(), absl::StatusCode::kUnimplemented);

  MixerImpl mixer;
  other::pkg::Shared shared;
  shared.set_text("mixed");
  deep::Outer_Inner_Innermost innermost;
  EXPECT_TRUE(Invoke(mixer, "Mix", shared, &innermost).ok());
  EXPECT_EQ(innermost.text(), "mixed");
  deep::Outer outer;
  EXPECT_EQ(Invoke(mixer, "Slash", outer, &outer).code(), absl::StatusCode::kUnimplemented);

  // The remaining bases instantiate.
  kw::Service_::CallbackService a;
  kw::delete_::CoroutineService b;
  kw::CoroutineService_::Service c;
  corpus::two::Legacy::Service d;
  corpus::two::Second::CoroutineService e;
  EXPECT_EQ(c.method_names(), (std::vector<std::string>{"CallbackService"}));
  EXPECT_EQ(b.method_names(), (std::vector<std::string>{"co_await"}));
}

TEST(CorpusTest, StubsInstantiate) {
  auto channel = nprpc::Channel::Create("127.0.0.1:1");
  ASSERT_TRUE(channel.ok());
  std::unique_ptr<Greeter::Stub> greeter = Greeter::NewStub(channel->get());
  deep::Clock::Stub clock(channel->get(), nprpc::StubOptions{.propagate_context = false});
  deep::Mixer::Stub mixer(channel->get());
  kw::Stub_::Stub keywords(channel->get());
  kw::delete_::Stub del(channel->get());
  corpus::two::Legacy::Stub legacy(channel->get());
  // Nothing listens on port 1: every form fails with UNAVAILABLE.
  corpus::two::Request request;
  request.set_name("n");
  EXPECT_EQ(legacy.Get(request).status().code(), absl::StatusCode::kUnavailable);
  kw::Msg msg;
  EXPECT_FALSE(keywords.delete_(msg).ok());
  EXPECT_FALSE(nprpc::BlockOn(del.co_awaitAsync(msg)).ok());
  EXPECT_FALSE(nprpc::BlockOn(keywords.EchoAsync_(msg)).ok());
  EXPECT_FALSE(nprpc::BlockOn(keywords.EchoAsyncAsync(msg)).ok());
  google::protobuf::Empty empty;
  EXPECT_FALSE(nprpc::BlockOn(clock.PingAsync(empty)).ok());
}

// Code under test talks to a StubInterface; tests hand it a mock.
absl::StatusOr<std::string> Greet(Greeter::StubInterface& stub, const std::string& name) {
  HelloRequest request;
  request.set_name(name);
  absl::StatusOr<HelloReply> reply = stub.SayHello(request);
  if (!reply.ok()) return reply.status();
  return reply->message();
}

TEST(CorpusMockTest, MocksAnswerEveryForm) {
  MockGreeterStub mock;
  HelloReply reply;
  reply.set_message("mocked");
  EXPECT_CALL(mock, SayHello(_, _))
      .WillOnce(Return(reply))
      .WillOnce(Return(reply))
      .WillOnce(Return(absl::UnavailableError("down")));
  EXPECT_EQ(*Greet(mock, "x"), "mocked");

  HelloRequest request;
  std::string seen;
  mock.SayHello(
      request, [&](absl::StatusOr<HelloReply> r) { seen = r->message(); }, nprpc::CallOptions());
  EXPECT_EQ(seen, "mocked");

  Greeter::StubInterface& stub = mock;
  EXPECT_EQ(nprpc::BlockOn(stub.SayHelloAsync(request)).status().code(),
            absl::StatusCode::kUnavailable);
}

TEST(CorpusMockTest, MocksOfEscapedNames) {
  kw::MockStubStub mock;
  EXPECT_CALL(mock, delete_(_, _)).WillOnce(Return(kw::Msg()));
  kw::Msg msg;
  EXPECT_TRUE(static_cast<kw::Stub_::StubInterface&>(mock).delete_(msg).ok());
  deep::MockMixerStub mixer;
  EXPECT_CALL(mixer, Unnest(_, _)).WillOnce(Return(other::pkg::Shared_Nested()));
  EXPECT_TRUE(nprpc::BlockOn(mixer.UnnestAsync(deep::Outer_Inner(), nprpc::CallOptions())).ok());
}

}  // namespace
