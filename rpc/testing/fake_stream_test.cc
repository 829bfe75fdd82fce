#include "rpc/testing/fake_stream.h"

#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/mutex.h"
#include "proto/echo.pb.h"
#include "rpc/stream_core.h"

namespace nprpc {
namespace testing {
namespace {

using example::EchoResponse;

EchoResponse Resp(const char* text) {
  EchoResponse r;
  r.set_message(text);
  return r;
}

class FakeStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netpoll::EventLoopGroupOptions options;
    options.num_loops = 1;
    options.name = "fake-stream-test";
    loops_ = std::move(netpoll::EventLoopGroup::Create(options)).value();
  }
  void TearDown() override { loops_->Stop(); }
  netpoll::EventLoop* loop() { return loops_->loop(0); }

  std::unique_ptr<netpoll::EventLoopGroup> loops_;
};

// A callback that records where it ran.
struct Outcome {
  netpoll::Notification done;
  bool ok = false;
  bool on_loop = false;
};

StreamCallback Record(Outcome* outcome, netpoll::EventLoop* loop) {
  return [outcome, loop](bool ok) {
    outcome->ok = ok;
    outcome->on_loop = loop->IsInLoopThread();
    outcome->done.Notify();
  };
}

TEST_F(FakeStreamTest, CallbacksRunOnTheLoopNeverInline) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  Outcome written;
  call->server()->Write(Resp("a"), Record(&written, loop()));
  written.done.WaitForNotification();
  EXPECT_TRUE(written.ok);
  EXPECT_TRUE(written.on_loop);
  EchoResponse got;
  Outcome read;
  call->client()->Read(&got, Record(&read, loop()));
  read.done.WaitForNotification();
  EXPECT_TRUE(read.ok);
  EXPECT_TRUE(read.on_loop);
  EXPECT_EQ(got.message(), "a");
}

TEST_F(FakeStreamTest, AWriteBeyondTheWindowCompletesWhenTheReaderReads) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());  // window: 1
  std::shared_ptr<ClientStreamCore> client = call->client();
  Outcome first;
  Outcome second;
  call->server()->Write(Resp("1"), Record(&first, loop()));
  call->server()->Write(Resp("2"), Record(&second, loop()));
  first.done.WaitForNotification();
  EXPECT_EQ(call->server_messages_written(), 1);
  EXPECT_FALSE(second.done.HasBeenNotified());
  EchoResponse got;
  Outcome read;
  client->Read(&got, Record(&read, loop()));
  second.done.WaitForNotification();
  EXPECT_TRUE(second.ok);
  EXPECT_EQ(call->server_messages_written(), 2);
}

TEST_F(FakeStreamTest, MessagesWrittenBeforeFinishAreReadThenTheStatus) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  std::shared_ptr<ClientStreamCore> client = call->client();
  Outcome written;
  call->server()->Write(Resp("last"), Record(&written, loop()));
  written.done.WaitForNotification();
  call->server()->Finish(absl::NotFoundError("gone"));
  call->server()->Finish(absl::OkStatus());  // dropped, counted
  EXPECT_EQ(call->server_finish_calls(), 2);
  EXPECT_EQ(call->server_status()->code(), absl::StatusCode::kNotFound);
  EchoResponse got;
  Outcome read;
  client->Read(&got, Record(&read, loop()));
  read.done.WaitForNotification();
  EXPECT_TRUE(read.ok);
  Outcome end;
  client->Read(&got, Record(&end, loop()));
  end.done.WaitForNotification();
  EXPECT_FALSE(end.ok);
  netpoll::Notification finished;
  absl::Status status;
  client->Finish([&](absl::Status s) {
    status = std::move(s);
    finished.Notify();
  });
  finished.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
}

TEST_F(FakeStreamTest, DroppingTheClientCancelsAndFailsTheServersOperations) {
  std::shared_ptr<FakeStreamCall> call = FakeStreamCall::Create(loop());
  EchoResponse got;
  Outcome read;
  call->server()->Read(&got, Record(&read, loop()));
  call->client().reset();
  read.done.WaitForNotification();
  EXPECT_FALSE(read.ok);
  EXPECT_TRUE(call->server()->context().IsCancelled());
  EXPECT_EQ(call->client(), nullptr);
}

}  // namespace
}  // namespace testing
}  // namespace nprpc
