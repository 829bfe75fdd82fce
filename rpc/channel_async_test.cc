#include "rpc/channel_async.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "proto/echo.pb.h"
#include "rpc/channel.h"
#include "rpc/task.h"

namespace nprpc {
namespace {

TEST(CallMethodAsyncTest, ResumesWithTheCallsStatus) {
  // Nothing listens on port 1: the call fails (UNAVAILABLE) on the channel's loop.
  auto channel = Channel::Create("127.0.0.1:1");
  ASSERT_TRUE(channel.ok());
  auto call = [](Channel* ch) -> Task<absl::Status> {
    example::EchoRequest request;
    request.set_message("hi");
    example::EchoResponse response;
    co_return co_await CallMethodAsync(ch, "example.EchoService", "Echo", request, &response);
  };
  absl::Status s = BlockOn(call(channel->get()));
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
}

// Propagation through CallMethodAsync over a real server (deadline and
// user fields reaching the next hop) is tested end to end in
// tests/codegen/e2e_test.cc (ChainTest).

}  // namespace
}  // namespace nprpc
