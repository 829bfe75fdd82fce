#include "rpc/server_context.h"

#include <atomic>
#include <thread>

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(ServerContextTest, DefaultHasNoDeadlineAndIsNotCancelled) {
  ServerContext ctx;
  EXPECT_EQ(ctx.deadline(), absl::InfiniteFuture());
  EXPECT_FALSE(ctx.timeout_ms().has_value());
  EXPECT_FALSE(ctx.deadline_exceeded());
  EXPECT_FALSE(ctx.IsCancelled());
  EXPECT_TRUE(ctx.trace().empty());
  EXPECT_EQ(ctx.response_compress_type(), CompressType::kNone);
  EXPECT_TRUE(ctx.request_attachment().empty());
}

TEST(ServerContextTest, PastDeadlineIsExceededAndCancelled) {
  ServerContext ctx;
  ctx.set_deadline(absl::Now() - absl::Milliseconds(1));
  EXPECT_TRUE(ctx.deadline_exceeded());
  EXPECT_TRUE(ctx.IsCancelled());
}

TEST(ServerContextTest, CancelFromAnotherThreadIsSeen) {
  ServerContext ctx;
  std::thread t([&] { ctx.Cancel(); });
  t.join();
  EXPECT_TRUE(ctx.IsCancelled());
  EXPECT_FALSE(ctx.deadline_exceeded());
}

TEST(ServerContextTest, ClosedConnectionCancels) {
  ServerContext ctx;
  auto closed = std::make_shared<std::atomic<bool>>(false);
  ctx.set_connection_closed_flag(closed);
  EXPECT_FALSE(ctx.IsCancelled());
  closed->store(true);
  EXPECT_TRUE(ctx.IsCancelled());
}

TEST(ServerContextTest, FindsRequestUserFields) {
  ServerContext ctx;
  ctx.mutable_request_user_fields()["x-tenant"] = "acme";
  ASSERT_NE(ctx.FindRequestUserField("x-tenant"), nullptr);
  EXPECT_EQ(*ctx.FindRequestUserField("x-tenant"), "acme");
  EXPECT_EQ(ctx.FindRequestUserField("x-other"), nullptr);
}

TEST(ServerContextTest, AttachmentMovesWithoutCopy) {
  std::string big(8192, 'a');  // outlives ctx, which references it
  ServerContext ctx;
  ctx.request_attachment().WriteBinary(big, [] {});
  ctx.response_attachment() = std::move(ctx.request_attachment());
  EXPECT_EQ(ctx.response_attachment().Len(), big.size());
  EXPECT_TRUE(ctx.request_attachment().empty());
}

TEST(ServerContextTest, ResponseSideIsWritable) {
  ServerContext ctx;
  ctx.response_user_fields()["k"] = "v";
  ctx.set_response_compress_type(CompressType::kGzip);
  EXPECT_EQ(ctx.response_user_fields().at("k"), "v");
  EXPECT_EQ(ctx.response_compress_type(), CompressType::kGzip);
}

TEST(ServerContextTest, OnCancelRunsOnceWhenCancelled) {
  ServerContext ctx;
  int runs = 0;
  ctx.OnCancel([&runs] { ++runs; });
  EXPECT_EQ(runs, 0);
  ctx.Cancel();
  ctx.Cancel();
  EXPECT_EQ(runs, 1);
}

TEST(ServerContextTest, OnCancelOfACancelledCallRunsAtOnce) {
  ServerContext ctx;
  ctx.Cancel();
  bool ran = false;
  ctx.OnCancel([&ran] { ran = true; });
  EXPECT_TRUE(ran);
}

TEST(ServerContextTest, DroppedCancelCallbacksNeverRun) {
  ServerContext ctx;
  bool ran = false;
  ctx.OnCancel([&ran] { ran = true; });
  ctx.DropCancelCallbacks();
  ctx.Cancel();
  EXPECT_FALSE(ran);
}

TEST(ServerContextTest, OnCancelFromAnotherThreadRunsOnce) {
  ServerContext ctx;
  std::atomic<int> runs{0};
  std::thread canceller([&ctx] { ctx.Cancel(); });
  ctx.OnCancel([&runs] { runs.fetch_add(1); });
  canceller.join();
  EXPECT_EQ(runs.load(), 1);
}

TEST(ServerContextTest, ResponseTrailersAreTheirOwnMap) {
  ServerContext ctx;
  ctx.response_trailers()["t"] = "v";
  EXPECT_TRUE(ctx.response_user_fields().empty());
  EXPECT_EQ(ctx.response_trailers().at("t"), "v");
}

}  // namespace
}  // namespace nprpc
