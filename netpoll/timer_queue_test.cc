#include "netpoll/timer_queue.h"

#include <vector>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

TEST(TimerQueue, RunsDueTimersInTimeOrder) {
  TimerQueue q;
  std::vector<int> order;
  q.Schedule(1, kT0 + absl::Milliseconds(30), absl::ZeroDuration(), [&] { order.push_back(30); });
  q.Schedule(2, kT0 + absl::Milliseconds(10), absl::ZeroDuration(), [&] { order.push_back(10); });
  q.Schedule(3, kT0 + absl::Milliseconds(20), absl::ZeroDuration(), [&] { order.push_back(20); });
  EXPECT_EQ(q.RunExpired(kT0 + absl::Milliseconds(25)), 2);
  EXPECT_EQ(order, (std::vector<int>{10, 20}));
  EXPECT_EQ(q.TimeUntilNext(kT0 + absl::Milliseconds(25)), absl::Milliseconds(5));
  EXPECT_EQ(q.RunExpired(kT0 + absl::Milliseconds(30)), 1);
  EXPECT_EQ(q.TimeUntilNext(kT0), absl::InfiniteDuration());
}

TEST(TimerQueue, CancelledTimerNeverRuns) {
  TimerQueue q;
  bool ran = false;
  q.Schedule(1, kT0, absl::ZeroDuration(), [&] { ran = true; });
  EXPECT_TRUE(q.Cancel(1));
  EXPECT_FALSE(q.Cancel(1));
  EXPECT_EQ(q.RunExpired(kT0 + absl::Seconds(1)), 0);
  EXPECT_FALSE(ran);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, RepeatingTimerRunsEveryIntervalUntilItCancelsItself) {
  TimerQueue q;
  int runs = 0;
  q.Schedule(7, kT0 + absl::Milliseconds(10), absl::Milliseconds(10), [&] {
    if (++runs == 3) q.Cancel(7);
  });
  for (int ms = 10; ms <= 100; ms += 10) q.RunExpired(kT0 + absl::Milliseconds(ms));
  EXPECT_EQ(runs, 3);
  EXPECT_EQ(q.size(), 0u);
}

TEST(TimerQueue, RepeatingTimerThatFellBehindRunsOnceNotInABurst) {
  TimerQueue q;
  int runs = 0;
  q.Schedule(1, kT0 + absl::Milliseconds(10), absl::Milliseconds(10), [&] { ++runs; });
  EXPECT_EQ(q.RunExpired(kT0 + absl::Seconds(1)), 1);
  EXPECT_EQ(runs, 1);
}

TEST(TimerQueue, CallbackMayScheduleAndCancelOtherTimers) {
  TimerQueue q;
  std::vector<int> order;
  q.Schedule(1, kT0, absl::ZeroDuration(), [&] {
    order.push_back(1);
    q.Cancel(2);
    q.Schedule(3, kT0, absl::ZeroDuration(), [&] { order.push_back(3); });
  });
  q.Schedule(2, kT0, absl::ZeroDuration(), [&] { order.push_back(2); });
  q.RunExpired(kT0);
  EXPECT_EQ(order, (std::vector<int>{1, 3}));
}

TEST(TimerQueue, CancelledEntriesBehindALiveEarlierTimerDoNotAccumulate) {
  TimerQueue queue;
  const absl::Time now = MonotonicNow();
  // A live timer due first keeps every stale entry below the top.
  queue.Schedule(1, now + absl::Seconds(1), absl::Seconds(1), [] {});
  for (TimerId id = 2; id < 100000; ++id) {
    queue.Schedule(id, now + absl::Seconds(5), absl::ZeroDuration(), [] {});
    ASSERT_TRUE(queue.Cancel(id));
  }
  EXPECT_EQ(queue.size(), 1u);
  EXPECT_LE(queue.heap_entries(), 2u + 1024u);
  // The live timer still fires, at its time.
  int ran = 0;
  queue.Schedule(100000, now + absl::Seconds(2), absl::ZeroDuration(), [&] { ++ran; });
  EXPECT_EQ(queue.RunExpired(now + absl::Seconds(2)), 2);  // the repeating one, then this
  EXPECT_EQ(ran, 1);
}

}  // namespace
}  // namespace netpoll
