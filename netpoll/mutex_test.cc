#include "netpoll/mutex.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

// Under --config=tsan this fails (TSan reports a race) unless TSan sees the
// lock's happens-before edges (it does for pthread mutexes, not for Debian's
// uninstrumented absl::Mutex).
TEST(Mutex, GuardedCounterHasNoRaceUnderContention) {
  struct {
    Mutex mu;
    int counter ABSL_GUARDED_BY(mu) = 0;
  } shared;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20000; ++i) {
        MutexLock lock(&shared.mu);
        ++shared.counter;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  MutexLock lock(&shared.mu);
  EXPECT_EQ(shared.counter, 80000);
}

TEST(CondVar, WaitSeesTheValueWrittenBeforeSignal) {
  struct {
    Mutex mu;
    int value ABSL_GUARDED_BY(mu) = 0;
  } shared;
  CondVar cv;
  std::thread writer([&] {
    MutexLock lock(&shared.mu);
    shared.value = 7;
    cv.SignalAll();
  });
  {
    MutexLock lock(&shared.mu);
    while (shared.value == 0) cv.Wait(&shared.mu);
    EXPECT_EQ(shared.value, 7);
  }
  writer.join();
}

TEST(CondVar, WaitWithTimeoutReportsTimeout) {
  Mutex mu;
  CondVar cv;
  MutexLock lock(&mu);
  EXPECT_TRUE(cv.WaitWithTimeout(&mu, absl::Milliseconds(5)));
}

TEST(Notification, WaitReturnsAfterNotifyFromAnotherThread) {
  Notification done;
  int payload = 0;
  std::thread notifier([&] {
    payload = 42;
    done.Notify();
  });
  done.WaitForNotification();
  EXPECT_EQ(payload, 42);
  EXPECT_TRUE(done.HasBeenNotified());
  notifier.join();
}

TEST(Notification, WaitWithTimeoutReturnsFalseWhenNeverNotified) {
  Notification never;
  EXPECT_FALSE(never.WaitForNotificationWithTimeout(absl::Milliseconds(5)));
}

}  // namespace
}  // namespace netpoll
