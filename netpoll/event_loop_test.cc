#include "netpoll/event_loop.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/mutex.h"

namespace netpoll {
namespace {

class EventLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loop = EventLoop::Create();
    ASSERT_TRUE(loop.ok()) << loop.status();
    loop_ = std::move(*loop);
    thread_ = std::thread([this] { loop_->Run(); });
    Notification running;
    loop_->QueueInLoop([&] { running.Notify(); });
    running.WaitForNotification();
  }
  void TearDown() override {
    loop_->Stop();
    thread_.join();
  }
  // Runs fn on the loop and waits for it.
  void RunAndWait(absl::AnyInvocable<void()> fn) {
    Notification done;
    loop_->QueueInLoop([&] {
      fn();
      done.Notify();
    });
    done.WaitForNotification();
  }

  std::unique_ptr<EventLoop> loop_;
  std::thread thread_;
};

TEST_F(EventLoopTest, TasksQueuedFromManyThreadsAllRunOnTheLoopThreadInOrderPerThread) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 2000;
  Mutex mu;
  std::vector<std::vector<int>> seen(kThreads);
  std::atomic<int> off_loop{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        loop_->QueueInLoop([&, t, i] {
          if (!loop_->IsInLoopThread()) off_loop++;
          MutexLock lock(&mu);
          seen[t].push_back(i);
        });
      }
    });
  }
  for (auto& thread : threads) thread.join();
  RunAndWait([] {});
  EXPECT_EQ(off_loop.load(), 0);
  MutexLock lock(&mu);
  for (int t = 0; t < kThreads; ++t) {
    ASSERT_EQ(seen[t].size(), static_cast<size_t>(kPerThread));
    for (int i = 0; i < kPerThread; ++i) ASSERT_EQ(seen[t][i], i);
  }
}

TEST_F(EventLoopTest, RunInLoopRunsImmediatelyOnTheLoopThread) {
  RunAndWait([&] {
    bool ran = false;
    loop_->RunInLoop([&] { ran = true; });
    EXPECT_TRUE(ran);
  });
}

TEST_F(EventLoopTest, RunAfterFiresAfterTheDelay) {
  Notification fired;
  absl::Time start = absl::Now();
  loop_->RunAfter(absl::Milliseconds(30), [&] { fired.Notify(); });
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(29));
}

TEST_F(EventLoopTest, CancelledTimerDoesNotFire) {
  std::atomic<bool> fired{false};
  TimerId id = loop_->RunAfter(absl::Milliseconds(20), [&] { fired = true; });
  loop_->Cancel(id);
  Notification later;
  loop_->RunAfter(absl::Milliseconds(60), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_FALSE(fired.load());
}

TEST_F(EventLoopTest, RunEveryRepeatsUntilCancelled) {
  std::atomic<int> runs{0};
  Notification three;
  TimerId id = loop_->RunEvery(absl::Milliseconds(5), [&] {
    if (++runs == 3) three.Notify();
  });
  ASSERT_TRUE(three.WaitForNotificationWithTimeout(absl::Seconds(5)));
  loop_->Cancel(id);
  RunAndWait([] {});
  int after_cancel = runs.load();
  Notification later;
  loop_->RunAfter(absl::Milliseconds(30), [&] { later.Notify(); });
  ASSERT_TRUE(later.WaitForNotificationWithTimeout(absl::Seconds(5)));
  EXPECT_EQ(runs.load(), after_cancel);
}

// The loop sleeps until its 300 ms timer; a cancellation from another thread
// does not wake it, yet takes effect before the timer would fire.
TEST_F(EventLoopTest, CancelFromAnotherThreadNeverWakesTheLoopAndStillWins) {
  std::atomic<bool> fired{false};
  TimerId id = loop_->RunAfter(absl::Milliseconds(300), [&] { fired = true; });
  absl::SleepFor(absl::Milliseconds(5));  // the loop is asleep until then
  const int64_t wakeups = loop_->stats().wakeups.load();
  loop_->Cancel(id);
  absl::SleepFor(absl::Milliseconds(400));
  EXPECT_FALSE(fired.load());
  EXPECT_EQ(loop_->stats().wakeups.load(), wakeups);
}

// A timer due before the loop's own next wake-up wakes it; one due after
// does not.
TEST_F(EventLoopTest, TimerFromAnotherThreadWakesTheLoopOnlyWhenDueEarlier) {
  TimerId far = loop_->RunAfter(absl::Seconds(30), [] {});
  RunAndWait([] {});  // the 30 s timer is in place; the loop sleeps on it
  absl::SleepFor(absl::Milliseconds(5));
  int64_t wakeups = loop_->stats().wakeups.load();
  Notification fired;
  absl::Time start = absl::Now();
  loop_->RunAfter(absl::Milliseconds(20), [&] { fired.Notify(); });
  ASSERT_TRUE(fired.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(19));
  EXPECT_LE(loop_->stats().wakeups.load(), wakeups + 1);
  // Now the loop sleeps until the 30 s timer again: a later timer waits.
  absl::SleepFor(absl::Milliseconds(5));
  wakeups = loop_->stats().wakeups.load();
  std::atomic<bool> later_fired{false};
  TimerId later = loop_->RunAfter(absl::Seconds(60), [&] { later_fired = true; });
  absl::SleepFor(absl::Milliseconds(20));
  EXPECT_EQ(loop_->stats().wakeups.load(), wakeups);
  loop_->Cancel(later);
  loop_->Cancel(far);
  RunAndWait([] {});
  EXPECT_FALSE(later_fired.load());
}

// Timer operations that did not wake the loop are bounded: the
// kMaxLazyTimerOps-th one wakes it, so they cannot pile up.
TEST_F(EventLoopTest, ManyLazyTimerOperationsWakeTheLoopEventually) {
  TimerId far = loop_->RunAfter(absl::Seconds(30), [] {});
  RunAndWait([] {});
  absl::SleepFor(absl::Milliseconds(5));
  const int64_t wakeups = loop_->stats().wakeups.load();
  std::atomic<int> fired{0};
  for (int i = 0; i < 5000; ++i) {
    loop_->Cancel(loop_->RunAfter(absl::Seconds(40), [&] { fired++; }));
  }
  // 10,000 operations, at most one wake-up per 1,024 (fewer when the loop
  // drains some before sleeping again).
  RunAndWait([] {});
  int64_t woken = loop_->stats().wakeups.load() - wakeups;
  EXPECT_GE(woken, 1);
  EXPECT_LE(woken, 10 + 1);  // + RunAndWait's own
  loop_->Cancel(far);
  EXPECT_EQ(fired.load(), 0);
}

TEST(EventLoop, TasksQueuedBeforeStopStillRun) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  std::atomic<int> ran{0};
  std::thread thread([&] { (*loop)->Run(); });
  for (int i = 0; i < 100; ++i) (*loop)->QueueInLoop([&] { ran++; });
  (*loop)->Stop();
  thread.join();
  EXPECT_EQ(ran.load(), 100);
}

TEST(EventLoopDeathTest, LoopOnlyMethodAbortsOffTheLoopThread) {
  auto loop = EventLoop::Create();
  ASSERT_TRUE(loop.ok());
  EXPECT_DEATH((void)(*loop)->AddFd(0, kPollReadable, nullptr),
               "loop-thread method called from another thread");
}

}  // namespace
}  // namespace netpoll
