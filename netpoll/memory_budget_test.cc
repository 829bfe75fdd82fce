#include "netpoll/memory_budget.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

TEST(MemoryBudget, TryChargeNeverGoesOverTheLimit) {
  MemoryBudget budget(1000);
  EXPECT_TRUE(budget.TryCharge(600));
  EXPECT_FALSE(budget.TryCharge(401));
  EXPECT_TRUE(budget.TryCharge(400));
  EXPECT_EQ(budget.used(), 1000);
  EXPECT_EQ(budget.available(), 0u);
  EXPECT_EQ(budget.Stats().refused, 1);
}

TEST(MemoryBudget, ConcurrentTryChargesTakeExactlyTheLimit) {
  MemoryBudget budget(10000);
  std::atomic<int> granted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        if (budget.TryCharge(7)) granted.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(granted.load(), 10000 / 7);
  EXPECT_LE(budget.used(), 10000);
}

TEST(MemoryBudget, SmallHoldersMayReadWhenTheBudgetIsSpent) {
  MemoryBudget budget(1 << 20, /*per_connection_reserve=*/4096);
  EXPECT_TRUE(budget.MayRead(1 << 20));
  budget.Add(1 << 20);
  EXPECT_FALSE(budget.MayRead(4096));
  EXPECT_TRUE(budget.MayRead(4095));
}

TEST(MemoryBudget, WaitersWakeOnceBelowTheResumeMark) {
  MemoryBudget budget(800);  // resume mark: 700
  budget.Add(800);
  int woken = 0;
  budget.WaitForRoom([&] { ++woken; });
  budget.WaitForRoom([&] { ++woken; });
  EXPECT_EQ(budget.Stats().waiting, 2);
  budget.Add(-50);  // 750: still above the mark
  EXPECT_EQ(woken, 0);
  budget.Add(-51);  // 699
  EXPECT_EQ(woken, 2);
  budget.Add(-100);
  EXPECT_EQ(woken, 2);  // each once
  EXPECT_EQ(budget.Stats().read_pauses, 2);
  EXPECT_EQ(budget.Stats().waiting, 0);
}

TEST(MemoryBudget, WaitingWithRoomAlreadyThereWakesAtOnce) {
  MemoryBudget budget(800);
  bool woken = false;
  budget.WaitForRoom([&] { woken = true; });
  EXPECT_TRUE(woken);
}

TEST(MemoryBudget, PeakRemembersTheHighestCharge) {
  MemoryBudget budget(1000);
  budget.Add(300);
  budget.Add(400);
  budget.Add(-600);
  EXPECT_EQ(budget.Stats().peak, 700);
  EXPECT_EQ(budget.used(), 100);
}

TEST(MemoryBudget, RecentPeakRestartsAtEachTake) {
  MemoryBudget budget(1000);
  budget.Add(500);
  budget.Add(-400);
  EXPECT_EQ(budget.TakeRecentPeak(), 500);
  EXPECT_EQ(budget.TakeRecentPeak(), 100);  // nothing higher since
  budget.Add(50);
  EXPECT_EQ(budget.TakeRecentPeak(), 150);
  EXPECT_EQ(budget.Stats().peak, 500);
}

TEST(MemoryBudget, DefaultIsAQuarterOfMemoryBetween64MiBAnd1GiB) {
  size_t budget = DefaultMemoryBudget();
  EXPECT_GE(budget, size_t{64} << 20);
  EXPECT_LE(budget, size_t{1} << 30);
}

}  // namespace
}  // namespace netpoll
