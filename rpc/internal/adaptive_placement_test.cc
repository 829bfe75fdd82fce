#include "rpc/internal/adaptive_placement.h"

#include "gtest/gtest.h"

namespace nprpc {
namespace {

constexpr int64_t kUs = 1000;
constexpr int64_t kSecond = 1000 * 1000 * kUs;

TEST(AdaptivePlacementTest, AMethodStartsOnTheLoopAndStaysThereWhileItsHandlersAreShort) {
  AdaptivePlacement p;
  EXPECT_TRUE(p.OnLoop(0));
  for (int i = 0; i < 1000; ++i) {
    p.RecordRun(2 * kUs, /*on_loop=*/true, i);
    ASSERT_TRUE(p.OnLoop(i));
  }
  EXPECT_EQ(p.moves_to_pool(), 0);
}

TEST(AdaptivePlacementTest, AHandOffMovesTheMethodToThePoolForItsProbation) {
  AdaptivePlacement p;
  p.handoff_flag()->store(true);  // what the watchdog does
  EXPECT_FALSE(p.OnLoop(10 * kSecond));
  EXPECT_FALSE(p.handoff_flag()->load());
  EXPECT_EQ(p.moves_to_pool(), 1);
  EXPECT_FALSE(p.OnLoop(10 * kSecond + kSecond - 1));  // within the first probation (1 s)
  EXPECT_TRUE(p.OnLoop(10 * kSecond + kSecond));       // short handlers: back on the loop
  EXPECT_TRUE(p.on_loop_now());
}

TEST(AdaptivePlacementTest, ACallThatBlockedItsLoopAndRanLongMovesTheMethodOnce) {
  AdaptivePlacement p;
  ASSERT_TRUE(p.OnLoop(0));
  p.handoff_flag()->store(true);  // while the handler blocked
  p.RecordRun(100 * 1000 * kUs, /*on_loop=*/true, 0);
  EXPECT_FALSE(p.OnLoop(0));
  EXPECT_EQ(p.moves_to_pool(), 1);
}

TEST(AdaptivePlacementTest, OneOutlierDoesNotMoveTheMethod) {
  AdaptivePlacement p;
  for (int i = 0; i < 100; ++i) p.RecordRun(2 * kUs, /*on_loop=*/true, 0);
  p.RecordRun(100 * 1000 * kUs, /*on_loop=*/true, 0);  // one 100 ms sample
  EXPECT_TRUE(p.OnLoop(0));
  EXPECT_EQ(p.moves_to_pool(), 0);
  p.RecordRun(100 * 1000 * kUs, /*on_loop=*/true, 0);
  p.RecordRun(100 * 1000 * kUs, /*on_loop=*/true, 0);  // the third in a row does
  EXPECT_FALSE(p.OnLoop(0));
}

TEST(AdaptivePlacementTest, LongHandlersMoveTheMethodToThePool) {
  AdaptivePlacement p;
  int n = 0;
  while (p.OnLoop(0)) {
    p.RecordRun(500 * kUs, /*on_loop=*/true, 0);
    ASSERT_LT(++n, 100);
  }
  EXPECT_EQ(p.moves_to_pool(), 1);
  EXPECT_GT(p.average_run_time(), AdaptivePlacement::kMaxLoopRunTime);
}

TEST(AdaptivePlacementTest, AMethodWhoseHandlersStayLongOnThePoolStaysThere) {
  AdaptivePlacement p;
  p.handoff_flag()->store(true);
  ASSERT_FALSE(p.OnLoop(0));
  // A handler that blocks: its run time on the pool shows it.
  for (int i = 0; i < 50; ++i) p.RecordRun(5000 * kUs, /*on_loop=*/false, 0);
  EXPECT_FALSE(p.OnLoop(100 * kSecond));
  // Once it turns short, it comes back after the probation.
  for (int i = 0; i < 100; ++i) p.RecordRun(kUs, /*on_loop=*/false, 0);
  EXPECT_TRUE(p.OnLoop(100 * kSecond));
}

TEST(AdaptivePlacementTest, TheProbationDoublesAtEveryMoveUpTo64Seconds) {
  AdaptivePlacement p;
  int64_t now = 0;
  for (int move = 0; move < 9; ++move) {
    p.handoff_flag()->store(true);
    ASSERT_FALSE(p.OnLoop(now));
    const int64_t probation = kSecond << std::min(move, 6);
    EXPECT_FALSE(p.OnLoop(now + probation - 1)) << move;
    EXPECT_TRUE(p.OnLoop(now + probation)) << move;
    now += probation;
  }
  EXPECT_EQ(p.moves_to_pool(), 9);
}

}  // namespace
}  // namespace nprpc
