#include "rpc/internal/sharded_counter.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace nprpc {
namespace {

TEST(ShardedCounterTest, StartsAtZero) {
  ShardedCounter counter;
  EXPECT_EQ(counter.Value(), 0);
}

TEST(ShardedCounterTest, ValueSumsAddsOfOneThread) {
  ShardedCounter counter;
  counter.Add(5);
  counter.Increment();
  counter.Add(-2);
  EXPECT_EQ(counter.Value(), 4);
}

TEST(ShardedCounterTest, ShardCountIsAPowerOfTwoAtMostSixteen) {
  size_t n = ShardCount();
  EXPECT_GE(n, 1u);
  EXPECT_LE(n, 16u);
  EXPECT_EQ(n & (n - 1), 0u);
  EXPECT_LT(ThisThreadShard(), n);
}

TEST(ShardedCounterTest, ConcurrentAddsFromManyThreadsLoseNothing) {
  ShardedCounter counter;
  constexpr int kThreads = 8;
  constexpr int kAdds = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kAdds; ++i) counter.Add(1);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(counter.Value(), kThreads * kAdds);
}

TEST(ShardedCounterTest, GaugeGoesUpAndDownAcrossThreads) {
  ShardedCounter in_flight;
  in_flight.Add(1);
  std::thread other([&] { in_flight.Add(-1); });  // ended on another thread
  other.join();
  EXPECT_EQ(in_flight.Value(), 0);
}

}  // namespace
}  // namespace nprpc
