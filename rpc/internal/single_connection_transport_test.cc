// SingleConnectionTransport against a ScriptedServer (tests/harness): the
// transport's side of the exactly-once contract with the call controller.
#include "rpc/internal/single_connection_transport.h"

#include <atomic>
#include <memory>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"
#include "proto/echo.pb.h"
#include "rpc/errors.h"
#include "rpc/internal/client_call.h"
#include "rpc/internal/frame_codec.h"
#include "tests/harness/scripted_server.h"

namespace nprpc {
namespace {

using example::EchoRequest;
using example::EchoResponse;
using testing::ScriptedServer;

class SingleConnectionTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.Start().ok());
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "client";
    auto loops = netpoll::EventLoopGroup::Create(options);
    ASSERT_TRUE(loops.ok()) << loops.status();
    loops_ = std::move(*loops);
    transport_ =
        SingleConnectionTransport::Create(server_.address(), loops_->loop(0), TransportOptions());
  }

  void TearDown() override {
    if (transport_) transport_->Shutdown();
  }

  // Sends example.EchoService/`method` as a new attempt; `done` runs when it
  // completes.
  ClientCallPtr Send(absl::string_view method, EchoResponse* response,
                     ClientCall::DoneCallback done) {
    ClientRequest request;
    request.service = "example.EchoService";
    request.method = std::string(method);
    EchoRequest echo;
    echo.set_message("hi");
    EXPECT_TRUE(SerializeToLinkBuffer(echo, request.payload).ok());
    auto call = std::make_shared<ClientCall>(next_id_++, response, nullptr, std::move(done));
    transport_->Send(call, request, absl::InfiniteFuture(), absl::InfiniteDuration());
    return call;
  }

  ScriptedServer server_;
  std::unique_ptr<netpoll::EventLoopGroup> loops_;
  std::shared_ptr<SingleConnectionTransport> transport_;
  int64_t next_id_ = 1;
};

// When a connection breaks, the transport takes every pending call at once
// and completes them one after another on the loop thread. A call abandoned
// meanwhile (its deadline, from the controller's clock thread) must have
// completed when Abandon() returns: the controller then runs the caller's
// `done`, which frees the response and CallInfo that a later completion (or
// the decoding of an answer) would still write into.
TEST_F(SingleConnectionTransportTest,
       AbandonCompletesACallTheBrokenConnectionTookButHasNotCompleted) {
  netpoll::Notification first_completing;
  netpoll::Notification release_first;
  std::atomic<int> first{-1};
  netpoll::Mutex mu;
  absl::Status statuses[2];
  int completions[2] = {0, 0};
  EchoResponse responses[2];
  ClientCallPtr calls[2];
  for (int i = 0; i < 2; ++i) {
    calls[i] = Send("Never", &responses[i], [&, i](absl::Status status) {
      {
        netpoll::MutexLock lock(&mu);
        statuses[i] = std::move(status);
        ++completions[i];
      }
      int none = -1;
      if (first.compare_exchange_strong(none, i)) {
        // Holds the loop thread between the two completions.
        first_completing.Notify();
        release_first.WaitForNotification();
      }
    });
  }
  ASSERT_TRUE(netpoll::testing::WaitFor([&] { return server_.requests() == 2; }));

  server_.Kill();
  first_completing.WaitForNotification();
  const int other = 1 - first.load();
  transport_->Abandon(calls[other], absl::CancelledError("abandoned by the test"));
  EXPECT_TRUE(calls[other]->completed()) << "Abandon() returned before the call completed";
  release_first.Notify();

  ASSERT_TRUE(netpoll::testing::WaitFor([&] {
    netpoll::MutexLock lock(&mu);
    return completions[0] == 1 && completions[1] == 1;
  }));
  netpoll::MutexLock lock(&mu);
  EXPECT_EQ(ErrorCodeOf(statuses[first.load()]), EFAILEDSOCKET) << statuses[first.load()];
  EXPECT_TRUE(absl::IsCancelled(statuses[other])) << statuses[other];
  EXPECT_EQ(std::string(statuses[other].message()), "abandoned by the test");
}

}  // namespace
}  // namespace nprpc
