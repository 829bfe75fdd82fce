// Server and client interceptor chains, end to end: a real Server with the
// echo service and a real Channel.
#include "rpc/interceptor.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/errors.h"
#include "rpc/server.h"
#include "tests/harness/echo_service.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;

// What interceptors saw, in order: "A.before", "B.after", ...
class Journal {
 public:
  void Add(std::string entry) {
    netpoll::MutexLock lock(&mu_);
    entries_.push_back(std::move(entry));
  }
  std::vector<std::string> entries() const {
    netpoll::MutexLock lock(&mu_);
    return entries_;
  }

 private:
  mutable netpoll::Mutex mu_;
  std::vector<std::string> entries_ ABSL_GUARDED_BY(mu_);
};

class RecordingServerInterceptor : public ServerInterceptor {
 public:
  RecordingServerInterceptor(std::string name, Journal* journal, absl::Status verdict = {})
      : name_(std::move(name)), journal_(journal), verdict_(std::move(verdict)) {}
  absl::Status BeforeCall(ServerContext& ctx) override {
    journal_->Add(absl::StrCat(name_, ".before ", ctx.service_name(), "/", ctx.method_name(), " ",
                               ctx.protocol()));
    return verdict_;
  }
  void AfterCall(const ServerContext& /*ctx*/, const CallOutcome& outcome) override {
    journal_->Add(absl::StrCat(name_, ".after ", absl::StatusCodeToString(outcome.status.code())));
    netpoll::MutexLock lock(&mu_);
    last_ = outcome;
  }
  CallOutcome last() const {
    netpoll::MutexLock lock(&mu_);
    return last_;
  }

 private:
  const std::string name_;
  Journal* const journal_;
  const absl::Status verdict_;
  mutable netpoll::Mutex mu_;
  CallOutcome last_ ABSL_GUARDED_BY(mu_);
};

class RecordingClientInterceptor : public ClientInterceptor {
 public:
  RecordingClientInterceptor(std::string name, Journal* journal, absl::Status verdict = {})
      : name_(std::move(name)), journal_(journal), verdict_(std::move(verdict)) {}
  absl::Status BeforeCall(ClientCallView& call) override {
    journal_->Add(absl::StrCat(name_, ".before ", call.service, "/", call.method));
    return verdict_;
  }
  void AfterCall(const ClientCallView& /*call*/, const CallOutcome& outcome) override {
    journal_->Add(absl::StrCat(name_, ".after ", absl::StatusCodeToString(outcome.status.code())));
    netpoll::MutexLock lock(&mu_);
    last_ = outcome;
  }
  CallOutcome last() const {
    netpoll::MutexLock lock(&mu_);
    return last_;
  }

 private:
  const std::string name_;
  Journal* const journal_;
  const absl::Status verdict_;
  mutable netpoll::Mutex mu_;
  CallOutcome last_ ABSL_GUARDED_BY(mu_);
};

// Adds a request field the handler echoes back, and a response field.
class AddingServerInterceptor : public ServerInterceptor {
 public:
  absl::Status BeforeCall(ServerContext& ctx) override {
    ctx.mutable_request_user_fields()["x-added-by-interceptor"] = "yes";
    ctx.response_user_fields()["x-served-through"] = "adder";
    return absl::OkStatus();
  }
};

// Per-call credentials: a bearer token in metadata, added by the client and
// checked by the server.
class BearerTokenClient : public ClientInterceptor {
 public:
  explicit BearerTokenClient(std::string token) : token_(std::move(token)) {}
  absl::Status BeforeCall(ClientCallView& call) override {
    call.metadata->emplace_back("authorization", absl::StrCat("Bearer ", token_));
    return absl::OkStatus();
  }

 private:
  const std::string token_;
};

class BearerTokenServer : public ServerInterceptor {
 public:
  absl::Status BeforeCall(ServerContext& ctx) override {
    const std::string* value = ctx.FindRequestUserField("authorization");
    if (value == nullptr || *value != "Bearer let-me-in") {
      return MakeRpcError(ERPCAUTH, "missing or wrong bearer token");
    }
    return absl::OkStatus();
  }
};

class InterceptorTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options) {
    server_ = std::make_unique<Server>(std::move(options));
    ASSERT_TRUE(server_->AddService(testing::NewEchoService()).ok());
    ASSERT_TRUE(server_->Start("127.0.0.1:0").ok());
  }
  std::unique_ptr<Channel> NewChannel(const ChannelOptions& options = {}) {
    auto channel = Channel::Create(server_->listen_address().ToString(), options);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return std::move(*channel);
  }
  absl::Status Echo(Channel& channel, EchoResponse* response, CallInfo* info = nullptr) {
    EchoRequest request;
    request.set_message("hello");
    CallOptions options;
    options.info = info;
    return channel.CallMethod("example.EchoService", "Echo", request, response, options);
  }
  int64_t HandlerRuns() const {
    const MethodStats m = server_->Stats().methods.at("example.EchoService/Echo");
    return m.ran_on_loop + m.ran_on_pool;
  }

  Journal journal_;
  std::unique_ptr<Server> server_;
};

TEST_F(InterceptorTest, ServerChainRunsBeforeCallsInOrderAndAfterCallsInReverse) {
  auto a = std::make_shared<RecordingServerInterceptor>("A", &journal_);
  auto b = std::make_shared<RecordingServerInterceptor>("B", &journal_);
  ServerOptions options;
  options.interceptors = {a, b};
  StartServer(options);
  auto channel = NewChannel();
  EchoResponse response;
  ASSERT_TRUE(Echo(*channel, &response).ok());
  EXPECT_EQ(response.message(), "hello");
  // AfterCall runs after the answer left: wait for the server's gate.
  server_->Shutdown(absl::Seconds(5));
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"A.before example.EchoService/Echo baidu_std",
                                      "B.before example.EchoService/Echo baidu_std", "B.after OK",
                                      "A.after OK"}));
  const CallOutcome outcome = a->last();
  EXPECT_TRUE(outcome.status.ok());
  EXPECT_GT(outcome.latency, absl::ZeroDuration());
  EXPECT_GT(outcome.request_bytes, 12u);  // a header and more
  EXPECT_GT(outcome.response_bytes, 12u);
}

TEST_F(InterceptorTest, ServerRejectionAnswersItsStatusAndSkipsTheRestAndTheHandler) {
  auto a = std::make_shared<RecordingServerInterceptor>("A", &journal_);
  auto b = std::make_shared<RecordingServerInterceptor>("B", &journal_,
                                                        absl::PermissionDeniedError("no entry"));
  auto c = std::make_shared<RecordingServerInterceptor>("C", &journal_);
  ServerOptions options;
  options.interceptors = {a, b, c};
  StartServer(options);
  auto channel = NewChannel();
  EchoResponse response;
  absl::Status s = Echo(*channel, &response);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << s;
  EXPECT_NE(s.message().find("no entry"), absl::string_view::npos) << s;
  server_->Shutdown(absl::Seconds(5));
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"A.before example.EchoService/Echo baidu_std",
                                      "B.before example.EchoService/Echo baidu_std",
                                      "B.after PERMISSION_DENIED", "A.after PERMISSION_DENIED"}));
  EXPECT_EQ(HandlerRuns(), 0);
  EXPECT_EQ(server_->Stats().methods.at("example.EchoService/Echo").failed, 1);
}

TEST_F(InterceptorTest, ServerInterceptorAddsMetadataTheHandlerAndClientSee) {
  ServerOptions options;
  options.interceptors = {std::make_shared<AddingServerInterceptor>()};
  StartServer(options);
  auto channel = NewChannel();
  EchoResponse response;
  CallInfo info;
  ASSERT_TRUE(Echo(*channel, &response, &info).ok());
  // The echo handler answers with the request fields it saw (replacing the
  // response fields set before it ran).
  const std::pair<std::string, std::string> field = {"x-added-by-interceptor", "yes"};
  EXPECT_NE(std::find(info.response_metadata.begin(), info.response_metadata.end(), field),
            info.response_metadata.end());
}

TEST_F(InterceptorTest, BearerTokenInMetadataIsCheckedByAServerInterceptor) {
  ServerOptions options;
  options.interceptors = {std::make_shared<BearerTokenServer>()};
  StartServer(options);
  ChannelOptions good;
  good.interceptors = {std::make_shared<BearerTokenClient>("let-me-in")};
  ChannelOptions bad;
  bad.interceptors = {std::make_shared<BearerTokenClient>("guess")};
  auto good_channel = NewChannel(good);
  auto bad_channel = NewChannel(bad);
  auto no_channel = NewChannel();
  EchoResponse response;
  EXPECT_TRUE(Echo(*good_channel, &response).ok());
  absl::Status s = Echo(*bad_channel, &response);
  EXPECT_EQ(ErrorCodeOf(s), ERPCAUTH) << s;
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated) << s;
  EXPECT_EQ(ErrorCodeOf(Echo(*no_channel, &response)), ERPCAUTH);
  EXPECT_EQ(HandlerRuns(), 1);
}

// Holds BeforeCall until the server's deadline timer has answered the call
// (the server counted the failure).
class WaitForDeadline : public ServerInterceptor {
 public:
  WaitForDeadline(Journal* journal, std::unique_ptr<Server>* server)
      : journal_(journal), server_(server) {}
  absl::Status BeforeCall(ServerContext& /*ctx*/) override {
    journal_->Add("before");
    EXPECT_TRUE(netpoll::testing::WaitFor(
        [&] { return (*server_)->Stats().methods.at("example.EchoService/Echo").failed == 1; }));
    journal_->Add("before returns");
    return absl::OkStatus();
  }
  void AfterCall(const ServerContext& /*ctx*/, const CallOutcome& outcome) override {
    journal_->Add(absl::StrCat("after ", ErrorCodeOf(outcome.status)));
    after_calls_.fetch_add(1);
  }
  std::atomic<int> after_calls_{0};

 private:
  Journal* const journal_;
  std::unique_ptr<Server>* const server_;
};

TEST_F(InterceptorTest, DeadlineAnsweringDuringTheChainStillRunsAfterCallOnceAndLast) {
  auto waiter = std::make_shared<WaitForDeadline>(&journal_, &server_);
  ServerOptions options;
  options.interceptors = {waiter};
  StartServer(options);
  auto channel = NewChannel();
  EchoRequest request;
  request.set_message("late");
  EchoResponse response;
  CallOptions call;
  call.timeout = absl::Milliseconds(50);
  absl::Status s = channel->CallMethod("example.EchoService", "Echo", request, &response, call);
  EXPECT_EQ(ErrorCodeOf(s), ERPCTIMEDOUT) << s;
  server_->Shutdown(absl::Seconds(5));  // the call gate: AfterCall has run
  EXPECT_EQ(waiter->after_calls_.load(), 1);
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{"before", "before returns", "after 1008"}));
  EXPECT_EQ(HandlerRuns(), 0);  // answered already: the handler is skipped
}

// Returns from BeforeCall once the deadline has passed (whether or not the
// server's timer has answered yet).
class OutlastTheDeadline : public ServerInterceptor {
 public:
  absl::Status BeforeCall(ServerContext& ctx) override {
    EXPECT_TRUE(netpoll::testing::WaitFor([&] { return ctx.deadline_exceeded(); }));
    return absl::OkStatus();
  }
  void AfterCall(const ServerContext& /*ctx*/, const CallOutcome& outcome) override {
    code_.store(ErrorCodeOf(outcome.status));
  }
  std::atomic<int32_t> code_{-1};
};

TEST_F(InterceptorTest, AChainThatOutlastsTheDeadlineSkipsTheHandler) {
  auto slow = std::make_shared<OutlastTheDeadline>();
  ServerOptions options;
  options.interceptors = {slow};
  StartServer(options);
  auto channel = NewChannel();
  EchoRequest request;
  request.set_message("late");
  EchoResponse response;
  CallOptions call;
  call.timeout = absl::Milliseconds(30);
  EXPECT_EQ(
      ErrorCodeOf(channel->CallMethod("example.EchoService", "Echo", request, &response, call)),
      ERPCTIMEDOUT);
  server_->Shutdown(absl::Seconds(5));
  EXPECT_EQ(slow->code_.load(), ERPCTIMEDOUT);
  EXPECT_EQ(HandlerRuns(), 0);
}

TEST_F(InterceptorTest, ClientChainRunsInOrderAndSeesTheOutcome) {
  StartServer({});
  auto a = std::make_shared<RecordingClientInterceptor>("A", &journal_);
  auto b = std::make_shared<RecordingClientInterceptor>("B", &journal_);
  ChannelOptions options;
  options.interceptors = {a, b};
  auto channel = NewChannel(options);
  EchoResponse response;
  ASSERT_TRUE(Echo(*channel, &response).ok());
  EXPECT_EQ(journal_.entries(), (std::vector<std::string>{"A.before example.EchoService/Echo",
                                                          "B.before example.EchoService/Echo",
                                                          "B.after OK", "A.after OK"}));
  const CallOutcome outcome = a->last();
  EXPECT_GT(outcome.request_bytes, 0u);
  EXPECT_EQ(outcome.response_bytes, response.ByteSizeLong());
  EXPECT_GT(outcome.latency, absl::ZeroDuration());
}

TEST_F(InterceptorTest, ClientRejectionSendsNothingAndCompletesOnce) {
  StartServer({});
  auto a = std::make_shared<RecordingClientInterceptor>("A", &journal_);
  auto b = std::make_shared<RecordingClientInterceptor>(
      "B", &journal_, absl::FailedPreconditionError("not configured"));
  auto c = std::make_shared<RecordingClientInterceptor>("C", &journal_);
  ChannelOptions options;
  options.interceptors = {a, b, c};
  auto channel = NewChannel(options);
  EchoRequest request;
  request.set_message("hello");
  EchoResponse response;
  int done_runs = 0;
  absl::Status result;
  channel->CallMethod("example.EchoService", "Echo", request, &response, CallOptions(),
                      [&](absl::Status s) {
                        ++done_runs;
                        result = std::move(s);
                      });
  // A rejection completes inside CallMethod, on the calling thread.
  EXPECT_EQ(done_runs, 1);
  EXPECT_EQ(result.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(journal_.entries(),
            (std::vector<std::string>{
                "A.before example.EchoService/Echo", "B.before example.EchoService/Echo",
                "B.after FAILED_PRECONDITION", "A.after FAILED_PRECONDITION"}));
  EXPECT_EQ(server_->Stats().total.received, 0);
}

TEST_F(InterceptorTest, ClientAfterCallSeesServerErrors) {
  StartServer({});
  auto a = std::make_shared<RecordingClientInterceptor>("A", &journal_);
  ChannelOptions options;
  options.interceptors = {a};
  auto channel = NewChannel(options);
  EchoRequest request;
  request.set_message("hello");
  EchoResponse response;
  absl::Status s =
      channel->CallMethod("example.EchoService", "NoSuchMethod", request, &response, {});
  EXPECT_EQ(ErrorCodeOf(s), ENOMETHOD);
  EXPECT_EQ(ErrorCodeOf(a->last().status), ENOMETHOD);
  EXPECT_EQ(a->last().response_bytes, 0u);
}

}  // namespace
}  // namespace nprpc
