#include "rpc/context_propagation.h"

#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/call_options.h"
#include "rpc/server_context.h"

namespace nprpc {
namespace {

TEST(ScopedServerContextTest, NestsAndRestores) {
  ServerContext outer, inner;
  EXPECT_EQ(CurrentServerContext(), nullptr);
  {
    ScopedServerContext a(&outer);
    EXPECT_EQ(CurrentServerContext(), &outer);
    {
      ScopedServerContext b(&inner);
      EXPECT_EQ(CurrentServerContext(), &inner);
    }
    EXPECT_EQ(CurrentServerContext(), &outer);
  }
  EXPECT_EQ(CurrentServerContext(), nullptr);
}

TEST(PropagateContextTest, TakesTheEarlierDeadlineAndAddsMissingFields) {
  ServerContext ctx;
  absl::Time incoming = absl::Now() + absl::Seconds(1);
  ctx.set_deadline(incoming);
  ctx.mutable_request_user_fields()["x-tenant"] = "acme";
  ctx.mutable_request_user_fields()["x-mine"] = "theirs";
  ctx.set_trace_id(77);
  ctx.set_span_id(5);
  ctx.set_log_id(11);
  ctx.set_request_id("req-1");

  CallOptions options;
  options.metadata = {{"x-mine", "mine"}};
  CallOptions out = PropagateContext(ctx, options);
  EXPECT_EQ(out.deadline, incoming);
  ASSERT_EQ(out.metadata.size(), 2u);
  EXPECT_EQ(out.metadata[0], (std::pair<std::string, std::string>("x-mine", "mine")));
  EXPECT_EQ(out.metadata[1], (std::pair<std::string, std::string>("x-tenant", "acme")));
  EXPECT_EQ(out.trace_id, 77);
  EXPECT_EQ(out.parent_span_id, 5);
  EXPECT_EQ(out.log_id, 11);
  EXPECT_EQ(out.request_id, "req-1");

  CallOptions earlier;
  earlier.deadline = absl::Now() + absl::Milliseconds(10);
  EXPECT_EQ(PropagateContext(ctx, earlier).deadline, earlier.deadline);
  EXPECT_EQ(PropagateContext(ServerContext(), CallOptions()).deadline, absl::InfiniteFuture());
}

}  // namespace
}  // namespace nprpc
