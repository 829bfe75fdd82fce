#include "rpc/service.h"

#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

// Records what the call was completed with.
class RecordingCompleter : public CallCompleter {
 public:
  void Complete(absl::Status status) override {
    ++completions;
    last = std::move(status);
  }
  int completions = 0;
  absl::Status last;
};

// echo.proto has no cc_generic_services: take the descriptor from its file.
const google::protobuf::ServiceDescriptor* EchoServiceDescriptor() {
  return example::EchoRequest::descriptor()->file()->FindServiceByName("EchoService");
}

TEST(ResponderTest, FirstCompletionWinsAndSecondIsIgnored) {
  auto completer = std::make_shared<RecordingCompleter>();
  Responder done(completer);
  EXPECT_FALSE(done.finished());
  EXPECT_TRUE(done.Finish(absl::OkStatus()));
  EXPECT_TRUE(done.finished());
  Responder copy = done;  // NOLINT(performance-unnecessary-copy-initialization): under test
  EXPECT_FALSE(copy.Finish(absl::InternalError("again")));
  EXPECT_EQ(completer->completions, 1);
  EXPECT_TRUE(completer->last.ok());
}

TEST(ResponderTest, DroppingEveryCopyUncompletedAnswersInternal) {
  auto completer = std::make_shared<RecordingCompleter>();
  {
    Responder done(completer);
    Responder copy = done;  // NOLINT(performance-unnecessary-copy-initialization): under test
  }
  EXPECT_EQ(completer->completions, 1);
  EXPECT_EQ(ErrorCodeOf(completer->last), EINTERNAL);
}

TEST(ResponderTest, DefaultResponderCompletesNothing) {
  Responder done;
  EXPECT_FALSE(done.Finish(absl::OkStatus()));
}

TEST(ResponderTest, RacingCompletionsCompleteOnce) {
  auto completer = std::make_shared<RecordingCompleter>();
  Responder done(completer);
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([done, &wins] {
      if (done.Finish(absl::OkStatus())) wins++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(completer->completions, 1);
}

TEST(HandlerErrorCodeTest, ExplicitNumberWinsElseCanonicalMapping) {
  EXPECT_EQ(HandlerErrorCode(absl::OkStatus()), 0);
  EXPECT_EQ(HandlerErrorCode(MakeRpcError(4242, "custom")), 4242);
  EXPECT_EQ(HandlerErrorCode(absl::UnimplementedError("x")), ENOMETHOD);
  EXPECT_EQ(HandlerErrorCode(absl::InvalidArgumentError("x")), EREQUEST);
  EXPECT_EQ(HandlerErrorCode(absl::ResourceExhaustedError("x")), ELIMIT);
  EXPECT_EQ(HandlerErrorCode(absl::UnknownError("x")), EINTERNAL);
  EXPECT_EQ(HandlerErrorCode(absl::FailedPreconditionError("x")), EINTERNAL);
}

TEST(ServiceTest, DescriptorServiceTakesNameAndMessageTypes) {
  Service service(EchoServiceDescriptor());
  EXPECT_EQ(service.full_name(), "example.EchoService");
  ASSERT_TRUE(service
                  .AddMethod("Echo", TypedUnary<example::EchoRequest, example::EchoResponse>(
                                         [](ServerContext&, const example::EchoRequest& req,
                                            example::EchoResponse* resp) {
                                           resp->set_message(req.message());
                                           return absl::OkStatus();
                                         }))
                  .ok());
  MethodHandler* handler = service.FindMethod("Echo");
  ASSERT_NE(handler, nullptr);
  auto request = handler->NewRequest();
  auto response = handler->NewResponse();
  EXPECT_EQ(request->GetDescriptor(), example::EchoRequest::descriptor());
  EXPECT_EQ(response->GetDescriptor(), example::EchoResponse::descriptor());
  static_cast<example::EchoRequest*>(request.get())->set_message("hi");

  auto completer = std::make_shared<RecordingCompleter>();
  ServerContext ctx;
  handler->Call(ctx, *request, response.get(), Responder(completer));
  EXPECT_EQ(completer->completions, 1);
  EXPECT_TRUE(completer->last.ok());
  EXPECT_EQ(static_cast<example::EchoResponse*>(response.get())->message(), "hi");
}

TEST(ServiceTest, RejectsUnknownDuplicateAndNamelessMethods) {
  Service service(EchoServiceDescriptor());
  UnaryHandlerFn ok = [](ServerContext&, const google::protobuf::Message&,
                         google::protobuf::Message*) { return absl::OkStatus(); };
  EXPECT_TRUE(absl::IsNotFound(service.AddMethod("Nope", ok)));
  EXPECT_TRUE(service.AddMethod("Echo", ok).ok());
  EXPECT_TRUE(absl::IsAlreadyExists(service.AddMethod("Echo", ok)));
  EXPECT_EQ(service.FindMethod("Fail"), nullptr);
  EXPECT_EQ(service.method_names(), std::vector<std::string>{"Echo"});

  Service named("pkg.Named");
  EXPECT_TRUE(absl::IsFailedPrecondition(named.AddMethod("Echo", ok)));
  EXPECT_TRUE(absl::IsInvalidArgument(named.AddMethod(std::string("X"), nullptr)));
  EXPECT_TRUE(named
                  .AddMethod(std::string("X"),
                             MakeUnaryMethodHandler(&example::EchoRequest::default_instance(),
                                                    &example::EchoResponse::default_instance(), ok))
                  .ok());
  EXPECT_NE(named.FindMethod("X"), nullptr);
}

TEST(ServiceTest, FunctionHandlersRunOnTheWorkerPoolUnlessToldOtherwise) {
  const auto* req = &example::EchoRequest::default_instance();
  const auto* resp = &example::EchoResponse::default_instance();
  auto ok = [](ServerContext&, const google::protobuf::Message&, google::protobuf::Message*) {
    return absl::OkStatus();
  };
  EXPECT_EQ(MakeUnaryMethodHandler(req, resp, ok)->execution_mode(),
            MethodHandler::ExecutionMode::kWorkerPool);
  EXPECT_EQ(MakeUnaryMethodHandler(req, resp, ok, MethodHandler::ExecutionMode::kIoLoop)
                ->execution_mode(),
            MethodHandler::ExecutionMode::kIoLoop);
}

TEST(ServiceTest, AsyncMethodMayCompleteFromAnotherThread) {
  Service service(EchoServiceDescriptor());
  std::thread worker;
  ASSERT_TRUE(service
                  .AddAsyncMethod("Echo",
                                  [&worker](ServerContext&, const google::protobuf::Message&,
                                            google::protobuf::Message*, const Responder& done) {
                                    worker = std::thread([done] { done(absl::OkStatus()); });
                                  })
                  .ok());
  auto completer = std::make_shared<RecordingCompleter>();
  ServerContext ctx;
  example::EchoRequest req;
  example::EchoResponse resp;
  service.FindMethod("Echo")->Call(ctx, req, &resp, Responder(completer));
  worker.join();
  EXPECT_EQ(completer->completions, 1);
}

}  // namespace
}  // namespace nprpc
