#include "rpc/internal/sharded_counter.h"

#include <algorithm>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/mutex.h"

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

TEST(ShardedCounterTest, LiveThreadsUpToShardCountGetDistinctShards) {
  // This thread holds one shard; ShardCount() - 1 more live threads take the
  // others, whatever threads came and went before.
  for (int round = 0; round < 3; ++round) std::thread([] { ThisThreadShard(); }).join();
  size_t n = ShardCount();
  std::vector<size_t> shards(n);
  shards[0] = ThisThreadShard();
  netpoll::Mutex mu;
  netpoll::CondVar cv;
  size_t started = 1;
  bool release = false;
  std::vector<std::thread> threads;
  for (size_t t = 1; t < n; ++t) {
    threads.emplace_back([&, t] {
      shards[t] = ThisThreadShard();
      netpoll::MutexLock lock(&mu);
      ++started;
      cv.SignalAll();
      while (!release) cv.Wait(&mu);
    });
  }
  {
    netpoll::MutexLock lock(&mu);
    while (started < n) cv.Wait(&mu);
    release = true;
    cv.SignalAll();
  }
  for (auto& thread : threads) thread.join();
  std::sort(shards.begin(), shards.end());
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(shards[i], i);
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
