#include "rpc/internal/worker_pool.h"

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "netpoll/mutex.h"

namespace nprpc {
namespace {

std::unique_ptr<WorkerPool> MakePool(int threads, size_t queue) {
  auto pool = WorkerPool::Create({.num_threads = threads, .max_queued_tasks = queue});
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(*pool);
}

TEST(WorkerPoolTest, RejectsBadOptions) {
  EXPECT_FALSE(WorkerPool::Create({.num_threads = 0}).ok());
  EXPECT_FALSE(WorkerPool::Create({.num_threads = 1, .max_queued_tasks = 0}).ok());
}

TEST(WorkerPoolTest, RunsEverySubmittedTask) {
  auto pool = MakePool(3, 1000);
  std::atomic<int> ran{0};
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(pool->TrySubmit([&] { ran.fetch_add(1); }).ok());
  }
  pool->Stop();
  EXPECT_EQ(ran.load(), 500);
}

TEST(WorkerPoolTest, FullQueueRefusesWithResourceExhausted) {
  auto pool = MakePool(1, 2);
  netpoll::Notification started, release;
  ASSERT_TRUE(pool->TrySubmit([&] {
                    started.Notify();
                    release.WaitForNotification();
                  })
                  .ok());
  started.WaitForNotification();  // the only thread is now busy
  std::atomic<int> ran{0};
  EXPECT_TRUE(pool->TrySubmit([&] { ran++; }).ok());
  EXPECT_TRUE(pool->TrySubmit([&] { ran++; }).ok());
  absl::Status full = pool->TrySubmit([&] { ran++; });
  EXPECT_TRUE(absl::IsResourceExhausted(full)) << full;
  EXPECT_EQ(pool->queued_tasks(), 2u);
  release.Notify();
  pool->Stop();
  EXPECT_EQ(ran.load(), 2);
}

TEST(WorkerPoolTest, StopRunsQueuedTasksThenRefusesNewOnes) {
  auto pool = MakePool(1, 100);
  netpoll::Notification release;
  std::atomic<int> ran{0};
  ASSERT_TRUE(pool->TrySubmit([&] { release.WaitForNotification(); }).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(pool->TrySubmit([&] { ran++; }).ok());
  std::thread stopper([&] { pool->Stop(); });
  release.Notify();
  stopper.join();
  EXPECT_EQ(ran.load(), 10);
  EXPECT_TRUE(absl::IsFailedPrecondition(pool->TrySubmit([] {})));
  pool->Stop();  // idempotent
}

TEST(WorkerPoolTest, TasksMaySubmitMoreTasks) {
  auto pool = MakePool(2, 100);
  netpoll::Notification done;
  ASSERT_TRUE(
      pool->TrySubmit([&] { ASSERT_TRUE(pool->TrySubmit([&] { done.Notify(); }).ok()); }).ok());
  EXPECT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
}

TEST(WorkerPoolTest, ConcurrentSubmittersAllRun) {
  auto pool = MakePool(4, 100000);
  std::atomic<int> ran{0};
  std::vector<std::thread> submitters;
  for (int t = 0; t < 4; ++t) {
    submitters.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) ASSERT_TRUE(pool->TrySubmit([&] { ran++; }).ok());
    });
  }
  for (auto& t : submitters) t.join();
  pool->Stop();
  EXPECT_EQ(ran.load(), 4000);
}

std::unique_ptr<WorkerPool> MakePollingPool(int threads, absl::Duration busy_poll) {
  auto pool =
      WorkerPool::Create({.num_threads = threads, .max_queued_tasks = 100, .busy_poll = busy_poll});
  EXPECT_TRUE(pool.ok()) << pool.status();
  return std::move(*pool);
}

// A worker that finished a task polls the queue: the next task, submitted
// while it polls, is taken by the poll.
TEST(WorkerPoolBusyPollTest, TaskSubmittedWhileAWorkerPollsIsTakenByThePoll) {
  auto pool = MakePollingPool(1, absl::Seconds(30));
  // The pool does not say when its worker starts polling: give it 20 ms, and
  // if the worker was slower than that (the task then went through the
  // queue, no hit), try again. A pool that never polls never passes.
  bool taken_by_poll = false;
  for (int attempt = 0; attempt < 50 && !taken_by_poll; ++attempt) {
    netpoll::Notification first, second;
    ASSERT_TRUE(pool->TrySubmit([&] { first.Notify(); }).ok());
    first.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(20));
    const int64_t hits = pool->busy_poll_hits();
    ASSERT_TRUE(pool->TrySubmit([&] { second.Notify(); }).ok());
    ASSERT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_LE(pool->busy_poll_hits(), hits + 1);
    taken_by_poll = pool->busy_poll_hits() == hits + 1;
  }
  EXPECT_TRUE(taken_by_poll);
}

// While one worker polls, a burst of tasks still wakes the sleeping workers:
// four tasks that can only finish together all run at once.
TEST(WorkerPoolBusyPollTest, BurstWhileOneWorkerPollsWakesTheSleepers) {
  auto pool = MakePollingPool(4, absl::Seconds(30));
  netpoll::Notification warm;
  ASSERT_TRUE(pool->TrySubmit([&] { warm.Notify(); }).ok());
  warm.WaitForNotification();
  // Gives one worker time to start polling and three to sleep; the burst
  // must run in any state, so the length does not decide the outcome.
  absl::SleepFor(absl::Milliseconds(20));
  std::atomic<int> arrived{0};
  netpoll::Notification all_running;
  std::atomic<int> done{0};
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(pool->TrySubmit([&] {
                      if (arrived.fetch_add(1) + 1 == 4) all_running.Notify();
                      all_running.WaitForNotificationWithTimeout(absl::Seconds(10));
                      done.fetch_add(1);
                    })
                    .ok());
  }
  EXPECT_TRUE(all_running.WaitForNotificationWithTimeout(absl::Seconds(10)));
  pool->Stop();
  EXPECT_EQ(done.load(), 4);
}

TEST(WorkerPoolBusyPollTest, StopEndsALongPoll) {
  auto pool = MakePollingPool(2, absl::Seconds(30));
  netpoll::Notification ran;
  ASSERT_TRUE(pool->TrySubmit([&] { ran.Notify(); }).ok());
  ran.WaitForNotification();
  // Gives a worker time to start its 30 s poll (Stop() must end it); a
  // worker not yet polling stops at once too, so the length does not decide
  // the outcome.
  absl::SleepFor(absl::Milliseconds(20));
  const absl::Time start = absl::Now();
  pool->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
}

}  // namespace
}  // namespace nprpc
