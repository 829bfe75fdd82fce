// Generated stubs and service bases over a real loopback nprpc::Server:
// every server style x every stub style, and a call chain A -> (B || C)
// where A's coroutine handler awaits B and C concurrently without blocking
// any thread, with A's deadline and metadata propagated to B and C.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "rpc/call_options.h"
#include "rpc/channel.h"
#include "rpc/server.h"
#include "rpc/server_context.h"
#include "rpc/task.h"
#include "tests/codegen/chain.nprpc.h"

namespace {

using chain::Back;
using chain::Front;
using chain::Request;
using chain::Response;

// What a handler reports about its call.
void Describe(const nprpc::ServerContext& context, const Request& request, Response* response) {
  response->set_text(request.text());
  response->set_deadline_left_ms(context.deadline() == absl::InfiniteFuture()
                                     ? -1
                                     : absl::ToInt64Milliseconds(context.deadline() - absl::Now()));
  const std::string* tenant = context.FindRequestUserField("x-tenant");
  response->set_tenant(tenant ? *tenant : "");
}

// Runs work on threads of its own after a delay (joined on destruction): a
// stand-in for "some other thread finishes this later".
class Later {
 public:
  ~Later() {
    std::vector<std::thread> threads;
    {
      netpoll::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (std::thread& t : threads) t.join();
  }
  void Run(absl::Duration delay, absl::AnyInvocable<void()> fn) {
    netpoll::MutexLock lock(&mu_);
    threads_.emplace_back([delay, fn = std::move(fn)]() mutable {
      absl::SleepFor(delay);  // "later" is the behaviour; checks wait for fn's effect
      fn();
    });
  }
  // co_await later.Sleep(d): resumes on another thread after `d`.
  auto Sleep(absl::Duration delay) {
    struct Awaiter {
      Later* later;
      absl::Duration delay;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        later->Run(delay, [h] { h.resume(); });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{this, delay};
  }

 private:
  netpoll::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------ Back, three ways

class SyncBack : public Back::Service {
 public:
  absl::Status Work(nprpc::ServerContext& context, const Request& request,
                    Response* response) override {
    Describe(context, request, response);
    // Blocks a worker: the behaviour (no check depends on the length).
    absl::SleepFor(absl::Milliseconds(request.delay_ms()));
    return absl::OkStatus();
  }
};

class CallbackBack : public Back::CallbackService {
 public:
  void Work(nprpc::ServerContext& context, const Request& request, Response* response,
            nprpc::Responder done) override {
    Describe(context, request, response);
    // Answered from another thread.
    later_.Run(absl::Milliseconds(request.delay_ms()),
               [done = std::move(done)] { done.Finish(absl::OkStatus()); });
  }

 private:
  Later later_;
};

class CoroutineBack : public Back::CoroutineService {
 public:
  nprpc::Task<absl::Status> Work(nprpc::ServerContext& context, const Request& request,
                                 Response* response) override {
    Describe(context, request, response);
    co_await later_.Sleep(absl::Milliseconds(request.delay_ms()));
    co_return co_await Check(request);  // a nested task
  }

 private:
  static nprpc::Task<absl::Status> Check(const Request& request) {
    if (request.text() == "fail") co_return absl::FailedPreconditionError("asked to fail");
    co_return absl::OkStatus();
  }
  Later later_;
};

// ------------------------------------------------------------ Servers

// A started server on an ephemeral loopback port and a channel to it.
struct Served {
  std::unique_ptr<nprpc::Server> server;
  std::unique_ptr<nprpc::Channel> channel;
};

Served Serve(nprpc::Service* service, nprpc::ServerOptions options = nprpc::ServerOptions()) {
  Served s;
  s.server = std::make_unique<nprpc::Server>(std::move(options));
  absl::Status added = s.server->AddService(service);
  EXPECT_TRUE(added.ok()) << added;
  absl::Status started = s.server->Start("127.0.0.1:0");
  EXPECT_TRUE(started.ok()) << started;
  auto channel = nprpc::Channel::Create(s.server->listen_address().ToString());
  EXPECT_TRUE(channel.ok()) << channel.status();
  s.channel = std::move(*channel);
  return s;
}

// ------------------------------------------------------------ Every style x every style

enum class ServerStyle { kSync, kCallback, kCoroutine };
enum class StubStyle { kSync, kCallback, kCoroutine };

std::unique_ptr<nprpc::Service> MakeBack(ServerStyle style) {
  switch (style) {
    case ServerStyle::kSync:
      return std::make_unique<SyncBack>();
    case ServerStyle::kCallback:
      return std::make_unique<CallbackBack>();
    case ServerStyle::kCoroutine:
      return std::make_unique<CoroutineBack>();
  }
  return nullptr;
}

absl::StatusOr<Response> CallWork(Back::StubInterface& stub, StubStyle style,
                                  const Request& request) {
  switch (style) {
    case StubStyle::kSync:
      return stub.Work(request);
    case StubStyle::kCallback: {
      netpoll::Notification done;
      absl::StatusOr<Response> result;
      stub.Work(
          request,
          [&](absl::StatusOr<Response> r) {
            result = std::move(r);
            done.Notify();
          },
          nprpc::CallOptions());
      done.WaitForNotification();
      return result;
    }
    case StubStyle::kCoroutine:
      return nprpc::BlockOn(stub.WorkAsync(request));
  }
  return absl::InternalError("unknown style");
}

class StyleMatrixTest : public ::testing::TestWithParam<std::tuple<ServerStyle, StubStyle>> {};

TEST_P(StyleMatrixTest, CallsSucceedAndFailThrough) {
  auto [server_style, stub_style] = GetParam();
  std::unique_ptr<nprpc::Service> back = MakeBack(server_style);
  Served served = Serve(back.get());
  Back::Stub stub(served.channel.get());

  Request request;
  request.set_text("hello");
  request.set_delay_ms(5);
  absl::StatusOr<Response> response = CallWork(stub, stub_style, request);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->text(), "hello");

  // The client's timeout reaches the handler as its deadline.
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(3);
  response = stub.Work(request, options);
  ASSERT_TRUE(response.ok());
  EXPECT_GT(response->deadline_left_ms(), 2000);
  EXPECT_LE(response->deadline_left_ms(), 3000);

  if (server_style == ServerStyle::kCoroutine) {
    request.set_text("fail");
    response = CallWork(stub, stub_style, request);
    EXPECT_EQ(response.status().code(), absl::StatusCode::kFailedPrecondition)
        << response.status();  // the handler's code survives (nprpc-status-code)
    EXPECT_NE(response.status().message().find("asked to fail"), absl::string_view::npos);
  }
  served.server->Shutdown(absl::Seconds(1));
}

// Unoverridden methods answer UNIMPLEMENTED (ENOMETHOD) in every style.
TEST_P(StyleMatrixTest, UnimplementedMethods) {
  auto [server_style, stub_style] = GetParam();
  std::unique_ptr<nprpc::Service> front;
  switch (server_style) {
    case ServerStyle::kSync:
      front = std::make_unique<Front::Service>();
      break;
    case ServerStyle::kCallback:
      front = std::make_unique<Front::CallbackService>();
      break;
    case ServerStyle::kCoroutine:
      front = std::make_unique<Front::CoroutineService>();
      break;
  }
  Served served = Serve(front.get());
  Front::Stub stub(served.channel.get());
  Request request;
  absl::StatusOr<Response> response;
  switch (stub_style) {
    case StubStyle::kSync:
      response = stub.Echo(request);
      break;
    case StubStyle::kCallback: {
      netpoll::Notification done;
      stub.Echo(
          request,
          [&](absl::StatusOr<Response> r) {
            response = std::move(r);
            done.Notify();
          },
          nprpc::CallOptions());
      done.WaitForNotification();
      break;
    }
    case StubStyle::kCoroutine:
      response = nprpc::BlockOn(stub.EchoAsync(request));
      break;
  }
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnimplemented) << response.status();
  EXPECT_NE(response.status().message().find("chain.Front/Echo is not implemented"),
            absl::string_view::npos)
      << response.status();
  served.server->Shutdown(absl::Seconds(1));
}

std::string StyleName(const ::testing::TestParamInfo<std::tuple<ServerStyle, StubStyle>>& info) {
  static const char* const kServers[] = {"SyncServer", "CallbackServer", "CoroutineServer"};
  static const char* const kStubs[] = {"SyncStub", "CallbackStub", "CoroutineStub"};
  return absl::StrCat(kServers[static_cast<int>(std::get<0>(info.param))],
                      kStubs[static_cast<int>(std::get<1>(info.param))]);
}

INSTANTIATE_TEST_SUITE_P(
    AllStyles, StyleMatrixTest,
    ::testing::Combine(
        ::testing::Values(ServerStyle::kSync, ServerStyle::kCallback, ServerStyle::kCoroutine),
        ::testing::Values(StubStyle::kSync, StubStyle::kCallback, StubStyle::kCoroutine)),
    StyleName);

// ------------------------------------------------------------ The chain A -> (B || C)

// A, as a coroutine: Fanout awaits B and C concurrently.
class CoroutineFront : public Front::CoroutineService {
 public:
  CoroutineFront(Back::StubInterface* b, Back::StubInterface* c) : b_(b), c_(c) {}

  nprpc::Task<absl::Status> Echo(nprpc::ServerContext& context, const Request& request,
                                 Response* response) override {
    Describe(context, request, response);
    co_return absl::OkStatus();
  }

  nprpc::Task<absl::Status> Fanout(nprpc::ServerContext& context, const Request& request,
                                   Response* response) override {
    Describe(context, request, response);
    auto [b, c] = co_await nprpc::WhenAll(b_->WorkAsync(request), c_->WorkAsync(request));
    if (!b.ok()) co_return b.status();
    if (!c.ok()) co_return c.status();
    *response->add_parts() = std::move(*b);
    *response->add_parts() = std::move(*c);
    co_return absl::OkStatus();
  }

 private:
  Back::StubInterface* const b_;
  Back::StubInterface* const c_;
};

// A, sync: calls B then C with blocking stub calls on its worker thread
// (context propagation through the thread's current call).
class SyncFront : public Front::Service {
 public:
  SyncFront(Back::StubInterface* b, Back::StubInterface* c) : b_(b), c_(c) {}
  absl::Status Fanout(nprpc::ServerContext& context, const Request& request,
                      Response* response) override {
    Describe(context, request, response);
    for (Back::StubInterface* stub : {b_, c_}) {
      absl::StatusOr<Response> part = stub->Work(request);
      if (!part.ok()) return part.status();
      *response->add_parts() = std::move(*part);
    }
    return absl::OkStatus();
  }

 private:
  Back::StubInterface* const b_;
  Back::StubInterface* const c_;
};

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    b_ = Serve(&b_service_);
    c_ = Serve(&c_service_);
    b_stub_ = std::make_unique<Back::Stub>(b_.channel.get());
    c_stub_ = std::make_unique<Back::Stub>(c_.channel.get());
  }
  void TearDown() override {
    if (a_.server) a_.server->Shutdown(absl::Seconds(2));
    b_.server->Shutdown(absl::Seconds(2));
    c_.server->Shutdown(absl::Seconds(2));
  }

  // A on one I/O loop and ONE worker thread: if Fanout held its thread while
  // waiting for B and C, nothing else on A could run.
  void StartFront(nprpc::Service* front) {
    nprpc::ServerOptions options;
    options.num_io_loops = 1;
    options.num_worker_threads = 1;
    options.forward_metadata.keys = {"x-tenant"};
    a_ = Serve(front, std::move(options));
  }

  SyncBack b_service_;
  CoroutineBack c_service_;
  Served a_, b_, c_;
  std::unique_ptr<Back::Stub> b_stub_, c_stub_;
};

TEST_F(ChainTest, FanoutAwaitsBAndCConcurrentlyWhileAKeepsAnswering) {
  CoroutineFront front(b_stub_.get(), c_stub_.get());
  StartFront(&front);
  Front::Stub stub(a_.channel.get());

  Request request;
  request.set_text("fan");
  // B and C each take a second: far longer than 50 echo calls to A take.
  request.set_delay_ms(1000);
  netpoll::Notification fanout_done;
  absl::StatusOr<Response> fanout;
  stub.Fanout(
      request,
      [&](absl::StatusOr<Response> r) {
        fanout = std::move(r);
        fanout_done.Notify();
      },
      nprpc::CallOptions());

  // Meanwhile, 50 calls to A's single worker complete.
  // Fanout is now waiting on B and C, both at once: neither answers before
  // its second has passed, so one after the other would never show both.
  EXPECT_TRUE(netpoll::testing::WaitFor([&] {
    return b_.server->Stats().total.in_flight == 1 && c_.server->Stats().total.in_flight == 1;
  })) << "B and C ran one after the other";
  Request echo;
  echo.set_text("ping");
  int answered = 0;
  for (int i = 0; i < 50; ++i) {
    absl::StatusOr<Response> r = stub.Echo(echo);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->text(), "ping");
    ++answered;
  }
  EXPECT_EQ(answered, 50);
  EXPECT_FALSE(fanout_done.HasBeenNotified())
      << "50 calls should finish while Fanout still waits for B and C";

  fanout_done.WaitForNotification();
  ASSERT_TRUE(fanout.ok()) << fanout.status();
  ASSERT_EQ(fanout->parts_size(), 2);
  EXPECT_EQ(fanout->parts(0).text(), "fan");
  EXPECT_EQ(fanout->parts(1).text(), "fan");
}

TEST_F(ChainTest, DeadlineAndMetadataReachBAndC) {
  CoroutineFront front(b_stub_.get(), c_stub_.get());
  StartFront(&front);
  Front::Stub stub(a_.channel.get());

  Request request;
  request.set_text("deadline");
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(2);
  options.metadata = {{"x-tenant", "acme"}};
  absl::StatusOr<Response> r = stub.Fanout(request, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->tenant(), "acme");
  EXPECT_GT(r->deadline_left_ms(), 1500);
  ASSERT_EQ(r->parts_size(), 2);
  for (const Response& part : r->parts()) {
    EXPECT_EQ(part.tenant(), "acme");
    // B and C see A's deadline (not their channel's 5 s default), a little
    // later than A did.
    EXPECT_GT(part.deadline_left_ms(), 1500);
    EXPECT_LE(part.deadline_left_ms(), r->deadline_left_ms());
  }
}

TEST_F(ChainTest, SyncHandlersPropagateThroughTheThreadsCurrentCall) {
  SyncFront front(b_stub_.get(), c_stub_.get());
  StartFront(&front);
  Front::Stub stub(a_.channel.get());
  Request request;
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(2);
  options.metadata = {{"x-tenant", "sync"}};
  absl::StatusOr<Response> r = stub.Fanout(request, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->parts_size(), 2);
  for (const Response& part : r->parts()) {
    EXPECT_EQ(part.tenant(), "sync");
    EXPECT_GT(part.deadline_left_ms(), 1500);
    EXPECT_LE(part.deadline_left_ms(), 2000);
  }
}

TEST_F(ChainTest, PropagationCanBeTurnedOff) {
  Back::Stub b(b_.channel.get(), nprpc::StubOptions{.propagate_context = false});
  Back::Stub c(c_.channel.get(), nprpc::StubOptions{.propagate_context = false});
  CoroutineFront front(&b, &c);
  StartFront(&front);
  Front::Stub stub(a_.channel.get());
  Request request;
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(2);
  options.metadata = {{"x-tenant", "acme"}};
  absl::StatusOr<Response> r = stub.Fanout(request, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->parts_size(), 2);
  for (const Response& part : r->parts()) {
    EXPECT_EQ(part.tenant(), "");
    EXPECT_GT(part.deadline_left_ms(), 2500);  // the channel's own 5 s default
  }
}

// Opts single calls out of propagation (CallOptions::propagate_context),
// through both the awaitable and the blocking stub forms.
class OptOutFront : public Front::CoroutineService {
 public:
  OptOutFront(Back::StubInterface* b, Back::StubInterface* c) : b_(b), c_(c) {}
  nprpc::Task<absl::Status> Fanout(nprpc::ServerContext& context, const Request& request,
                                   Response* response) override {
    Describe(context, request, response);
    nprpc::CallOptions no_propagation;  // named: see the g++ caveat in rpc/task.h
    no_propagation.propagate_context = false;
    // The blocking form first, while the handler still runs on the server's
    // loop with the call current (after an await it would run on a channel
    // loop, where blocking is not allowed).
    absl::StatusOr<Response> b = b_->Work(request, no_propagation);
    if (!b.ok()) co_return b.status();
    *response->add_parts() = std::move(*b);
    absl::StatusOr<Response> c = co_await c_->WorkAsync(request, no_propagation);
    if (!c.ok()) co_return c.status();
    *response->add_parts() = std::move(*c);
    co_return absl::OkStatus();
  }

 private:
  Back::StubInterface* const b_;
  Back::StubInterface* const c_;
};

TEST_F(ChainTest, PropagationCanBeTurnedOffPerCall) {
  OptOutFront front(b_stub_.get(), c_stub_.get());
  StartFront(&front);
  Front::Stub stub(a_.channel.get());
  Request request;
  nprpc::CallOptions options;
  options.timeout = absl::Seconds(2);
  options.metadata = {{"x-tenant", "acme"}};
  absl::StatusOr<Response> r = stub.Fanout(request, options);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->parts_size(), 2);
  for (const Response& part : r->parts()) {
    EXPECT_EQ(part.tenant(), "");
    EXPECT_GT(part.deadline_left_ms(), 2500);  // the channel's own 5 s default
  }
}

TEST_F(ChainTest, AnExpiredIncomingDeadlineCutsTheChainShort) {
  CoroutineFront front(b_stub_.get(), c_stub_.get());
  StartFront(&front);
  Front::Stub stub(a_.channel.get());
  Request request;
  request.set_delay_ms(400);
  nprpc::CallOptions options;
  options.timeout = absl::Milliseconds(100);
  absl::Time start = absl::Now();
  absl::StatusOr<Response> r = stub.Fanout(request, options);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(350));
}

}  // namespace
