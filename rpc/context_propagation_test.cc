#include "rpc/context_propagation.h"

#include <string>
#include <utility>
#include <vector>

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
  ctx.set_trace({.trace_id = 77, .span_id = 5, .log_id = 11, .request_id = "req-1"});

  MetadataForwarding forwarding{.keys = {"x-mine", "x-tenant"}};
  ctx.set_metadata_forwarding(&forwarding);
  CallOptions options;
  options.metadata = {{"x-mine", "mine"}};
  CallOptions out = PropagateContext(ctx, options);
  EXPECT_EQ(out.deadline, incoming);
  ASSERT_EQ(out.metadata.size(), 2u);
  EXPECT_EQ(out.metadata[0], (std::pair<std::string, std::string>("x-mine", "mine")));
  EXPECT_EQ(out.metadata[1], (std::pair<std::string, std::string>("x-tenant", "acme")));
  EXPECT_EQ(
      out.trace,
      (TraceContext{.trace_id = 77, .parent_span_id = 5, .log_id = 11, .request_id = "req-1"}));

  CallOptions earlier;
  earlier.deadline = absl::Now() + absl::Milliseconds(10);
  EXPECT_EQ(PropagateContext(ctx, earlier).deadline, earlier.deadline);
  EXPECT_EQ(PropagateContext(ServerContext(), CallOptions()).deadline, absl::InfiniteFuture());
}

TEST(PropagateContextTest, ForwardsNoUserFieldByDefault) {
  ServerContext ctx;
  ctx.mutable_request_user_fields()["authorization"] = "Bearer secret";
  ctx.mutable_request_user_fields()["x-tenant"] = "acme";
  ctx.set_trace({.trace_id = 9, .span_id = 3});
  ctx.set_deadline(absl::Now() + absl::Seconds(1));
  CallOptions out = PropagateContext(ctx, CallOptions());
  EXPECT_TRUE(out.metadata.empty());
  EXPECT_EQ(out.trace.trace_id, 9);  // the trace and the deadline still flow
  EXPECT_EQ(out.trace.parent_span_id, 3);
  EXPECT_EQ(out.deadline, ctx.deadline());
}

TEST(PropagateContextTest, ForwardsTheUserFieldsNamedByKeyOrPrefix) {
  ServerContext ctx;
  ctx.mutable_request_user_fields()["authorization"] = "Bearer secret";
  ctx.mutable_request_user_fields()["x-tenant"] = "acme";
  ctx.mutable_request_user_fields()["x-b3-traceid"] = "abc";
  ctx.mutable_request_user_fields()["x-b3"] = "no prefix match";
  MetadataForwarding forwarding{.keys = {"x-tenant"}, .prefixes = {"x-b3-"}};
  ctx.set_metadata_forwarding(&forwarding);
  CallOptions out = PropagateContext(ctx, CallOptions());
  std::vector<std::pair<std::string, std::string>> expected = {{"x-b3-traceid", "abc"},
                                                               {"x-tenant", "acme"}};
  EXPECT_EQ(out.metadata, expected);
}

}  // namespace
}  // namespace nprpc
