#include "rpc/internal/worker_pool.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
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
  EXPECT_FALSE(WorkerPool::Create({.num_threads = 1, .idle_after = absl::ZeroDuration()}).ok());
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

// Occupies the only thread of a one-thread pool until Release() (or its
// destruction), so that the tests can queue tasks and then watch the order the
// thread runs them in.
class Blocker {
 public:
  explicit Blocker(WorkerPool& pool, uint64_t key = 999) {
    EXPECT_TRUE(pool.TrySubmit(
                        [state = state_] {
                          state->started.Notify();
                          state->release.WaitForNotification();
                        },
                        key)
                    .ok());
    state_->started.WaitForNotification();
  }
  ~Blocker() { Release(); }
  void Release() {
    if (!state_->release.HasBeenNotified()) state_->release.Notify();
  }

 private:
  struct State {
    netpoll::Notification started, release;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

// Tasks append their key to `order`; read it after Stop() (which joins the
// thread that wrote it).
WorkerPool::Task Record(std::vector<uint64_t>& order, uint64_t key) {
  return [&order, key] { order.push_back(key); };
}

TEST(WorkerPoolFairnessTest, OneTaskOfAKeyRunsBeforeAnotherKeysQueuedFlood) {
  std::vector<uint64_t> order;
  auto pool = MakePool(1, 1000);
  Blocker blocker(*pool);
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(pool->TrySubmit(Record(order, 1), 1).ok());
  ASSERT_TRUE(pool->TrySubmit(Record(order, 2), 2).ok());
  blocker.Release();
  pool->Stop();
  ASSERT_EQ(order.size(), 101u);
  // Key 1's oldest task, then key 2's only one: within the first two.
  EXPECT_EQ(order[1], 2u);
}

TEST(WorkerPoolFairnessTest, KeysWithQueuedTasksAreServedInTurn) {
  std::vector<uint64_t> order;
  auto pool = MakePool(1, 1000);
  Blocker blocker(*pool);
  for (uint64_t key : {1, 2, 3}) {
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool->TrySubmit(Record(order, key), key).ok());
  }
  blocker.Release();
  pool->Stop();
  EXPECT_THAT(order, ::testing::ElementsAre(1, 2, 3, 1, 2, 3, 1, 2, 3));
}

TEST(WorkerPoolFairnessTest, TasksOfOneKeyRunInSubmitOrder) {
  std::vector<uint64_t> order;  // key * 1000 + sequence number
  auto pool = MakePool(1, 1000);
  Blocker blocker(*pool);
  for (int i = 0; i < 100; ++i) {
    // Keys 1 and 2 alternate; key 3 comes in bursts of 10.
    for (uint64_t key : {1, 2}) {
      ASSERT_TRUE(pool->TrySubmit(Record(order, key * 1000 + i), key).ok());
    }
    if (i % 10 == 0) {
      for (int j = 0; j < 10; ++j) {
        ASSERT_TRUE(pool->TrySubmit(Record(order, 3000 + i + j), 3).ok());
      }
    }
  }
  blocker.Release();
  pool->Stop();
  ASSERT_EQ(order.size(), 300u);
  std::vector<std::vector<uint64_t>> per_key(4);
  for (uint64_t v : order) per_key[v / 1000].push_back(v % 1000);
  for (uint64_t key : {1, 2, 3}) {
    ASSERT_EQ(per_key[key].size(), 100u) << key;
    EXPECT_TRUE(std::is_sorted(per_key[key].begin(), per_key[key].end())) << key;
  }
}

TEST(WorkerPoolFairnessTest, FullQueueAdmitsAKeyBelowItsShareAndRefusesAKeyAtItsShare) {
  std::atomic<int> ran{0};
  auto pool = MakePool(1, 4);
  Blocker blocker(*pool);
  auto task = [&] { return [&ran] { ran++; }; };
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(pool->TrySubmit(task(), 1).ok());
  // Full; key 1 alone holds all 4 (its share of 4 among 1 key).
  absl::Status s = pool->TrySubmit(task(), 1);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "worker queue is full")) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "share")) << s;
  // Key 2 holds nothing: admitted although the queue is full.
  EXPECT_TRUE(pool->TrySubmit(task(), 2).ok());
  // Two keys: each one's share is 2. Key 2 holds 1, below it; then 2, at it.
  EXPECT_TRUE(pool->TrySubmit(task(), 2).ok());
  s = pool->TrySubmit(task(), 2);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::IsResourceExhausted(pool->TrySubmit(task(), 1)));
  // A third key: share 1; admitted once, then at its share.
  EXPECT_TRUE(pool->TrySubmit(task(), 3).ok());
  EXPECT_TRUE(absl::IsResourceExhausted(pool->TrySubmit(task(), 3)));
  EXPECT_EQ(pool->queued_tasks(), 7u);
  EXPECT_EQ(pool->queued_keys(), 3u);
  blocker.Release();
  pool->Stop();
  EXPECT_EQ(ran.load(), 7);
}

TEST(WorkerPoolFairnessTest, HardLimitOfTwiceMaxRefusesEvenAKeyBelowItsShare) {
  std::atomic<int> ran{0};
  auto pool = MakePool(1, 4);
  Blocker blocker(*pool);
  // One task per key: each key is below its share (at least 1) when it comes.
  for (uint64_t key = 1; key <= 8; ++key) {
    ASSERT_TRUE(pool->TrySubmit([&] { ran++; }, key).ok()) << key;
  }
  EXPECT_EQ(pool->queued_tasks(), 8u);
  absl::Status s = pool->TrySubmit([&] { ran++; }, 9);
  EXPECT_TRUE(absl::IsResourceExhausted(s)) << s;
  EXPECT_TRUE(absl::StrContains(s.message(), "hard limit")) << s;
  // Also for a key that has tasks queued, and for key 0.
  EXPECT_TRUE(absl::IsResourceExhausted(pool->TrySubmit([&] { ran++; }, 1)));
  EXPECT_TRUE(absl::IsResourceExhausted(pool->TrySubmit([&] { ran++; })));
  EXPECT_EQ(pool->queued_tasks(), 8u);
  blocker.Release();
  pool->Stop();
  EXPECT_EQ(ran.load(), 8);
}

TEST(WorkerPoolFairnessTest, QueuedKeysCountsKeysWithQueuedTasksOnly) {
  auto pool = MakePool(1, 100);
  EXPECT_EQ(pool->queued_keys(), 0u);
  auto blocker = std::make_unique<Blocker>(*pool);
  EXPECT_EQ(pool->queued_keys(), 0u);  // the running task is not queued
  netpoll::Notification last_ran;
  ASSERT_TRUE(pool->TrySubmit([] {}, 1).ok());
  ASSERT_TRUE(pool->TrySubmit([] {}, 1).ok());
  ASSERT_TRUE(pool->TrySubmit([] {}, 2).ok());
  ASSERT_TRUE(pool->TrySubmit([&] { last_ran.Notify(); }, 2).ok());
  EXPECT_EQ(pool->queued_keys(), 2u);
  EXPECT_EQ(pool->queued_tasks(), 4u);
  blocker->Release();
  last_ran.WaitForNotification();  // the last task of the ring
  EXPECT_EQ(pool->queued_keys(), 0u);
  EXPECT_EQ(pool->queued_tasks(), 0u);
  pool->Stop();
}

TEST(WorkerPoolFairnessTest, ManyKeysEachRunTheirTasksOnce) {
  constexpr int kKeys = 5000;
  std::vector<int> runs(kKeys * 2, 0);  // written by the one worker, read after Stop()
  auto pool = MakePool(1, 100000);
  Blocker blocker(*pool);
  for (int round = 0; round < 2; ++round) {
    for (int key = 0; key < kKeys; ++key) {
      ASSERT_TRUE(pool->TrySubmit([&runs, i = round * kKeys + key] { runs[i]++; }, key).ok());
    }
  }
  EXPECT_EQ(pool->queued_keys(), static_cast<size_t>(kKeys));
  blocker.Release();
  pool->Stop();
  for (int i = 0; i < kKeys * 2; ++i) ASSERT_EQ(runs[i], 1) << i;
}

TEST(WorkerPoolFairnessTest, StopRunsEveryAcceptedTaskOfEveryKeyExactlyOnce) {
  constexpr int kSubmitters = 4;
  constexpr int kPerSubmitter = 3000;
  constexpr int kTotal = kSubmitters * kPerSubmitter;
  std::vector<std::atomic<int>> runs(kTotal);
  auto pool = MakePool(2, 64);
  std::vector<char> accepted(kTotal, 0);  // each slot written by one submitter
  std::atomic<int> submitted{0};
  netpoll::Notification halfway;
  std::vector<std::thread> submitters;
  for (int t = 0; t < kSubmitters; ++t) {
    submitters.emplace_back([&, t] {
      for (int i = 0; i < kPerSubmitter; ++i) {
        const int id = t * kPerSubmitter + i;
        absl::Status s = pool->TrySubmit([&runs, id] { runs[id]++; }, id % 13);
        EXPECT_TRUE(s.ok() || absl::IsResourceExhausted(s) || absl::IsFailedPrecondition(s)) << s;
        accepted[id] = s.ok();
        if (submitted.fetch_add(1) + 1 == kTotal / 2) halfway.Notify();
      }
    });
  }
  std::thread stopper([&] {
    halfway.WaitForNotification();
    pool->Stop();
  });
  for (auto& t : submitters) t.join();
  stopper.join();
  int num_accepted = 0;
  for (int id = 0; id < kTotal; ++id) {
    ASSERT_EQ(runs[id].load(), accepted[id] ? 1 : 0) << id;
    num_accepted += accepted[id];
  }
  EXPECT_GT(num_accepted, 0);
  EXPECT_TRUE(absl::IsFailedPrecondition(pool->TrySubmit([] {}, 1)));
}

// What on_idle saw, each time it ran.
struct IdleLog {
  netpoll::Mutex mu;
  std::atomic<int> tasks_run{0};
  std::vector<int> tasks_run_at_call ABSL_GUARDED_BY(mu);
  std::vector<std::thread::id> threads ABSL_GUARDED_BY(mu);
  netpoll::Notification calls[3];

  void OnIdle() {
    netpoll::MutexLock lock(&mu);
    tasks_run_at_call.push_back(tasks_run.load());
    threads.push_back(std::this_thread::get_id());
    if (tasks_run_at_call.size() <= 3) calls[tasks_run_at_call.size() - 1].Notify();
  }
};

TEST(WorkerPoolIdleTest, IdleHookRunsOnceAfterIdleAndAgainOnlyAfterWork) {
  IdleLog log;
  constexpr absl::Duration kIdleAfter = absl::Milliseconds(5);
  // Twenty idle periods: a pool that called the hook without work would.
  const absl::Duration kNoCall = 20 * kIdleAfter;
  auto created = WorkerPool::Create({.num_threads = 1,
                                     .max_queued_tasks = 10,
                                     .on_idle = [&log] { log.OnIdle(); },
                                     .idle_after = kIdleAfter});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<WorkerPool> pool = std::move(*created);

  // A worker that never ran a task has nothing to trim.
  EXPECT_FALSE(log.calls[0].WaitForNotificationWithTimeout(kNoCall));

  std::thread::id worker;
  auto task = [&] {
    worker = std::this_thread::get_id();
    log.tasks_run++;
  };
  ASSERT_TRUE(pool->TrySubmit(task).ok());
  ASSERT_TRUE(log.calls[0].WaitForNotificationWithTimeout(absl::Seconds(10)));
  // Once per idle period after work, not every idle_after.
  EXPECT_FALSE(log.calls[1].WaitForNotificationWithTimeout(kNoCall));

  ASSERT_TRUE(pool->TrySubmit(task).ok());
  ASSERT_TRUE(log.calls[1].WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(log.calls[2].WaitForNotificationWithTimeout(kNoCall));
  pool->Stop();

  netpoll::MutexLock lock(&log.mu);
  EXPECT_THAT(log.tasks_run_at_call, ::testing::ElementsAre(1, 2));
  EXPECT_THAT(log.threads, ::testing::Each(worker));  // the worker's own thread
}

TEST(WorkerPoolIdleTest, IdleWorkerServesTasksAgainAndStopsPromptly) {
  IdleLog log;
  auto created = WorkerPool::Create({.num_threads = 2,
                                     .max_queued_tasks = 10,
                                     .busy_poll = absl::Microseconds(20),
                                     .on_idle = [&log] { log.OnIdle(); },
                                     .idle_after = absl::Milliseconds(1)});
  ASSERT_TRUE(created.ok()) << created.status();
  std::unique_ptr<WorkerPool> pool = std::move(*created);
  netpoll::Notification first;
  ASSERT_TRUE(pool->TrySubmit([&] { first.Notify(); }, 1).ok());
  first.WaitForNotification();
  ASSERT_TRUE(log.calls[0].WaitForNotificationWithTimeout(absl::Seconds(10)));
  // After its hook (which also freed the pool's spare entries) the pool
  // still takes and runs tasks.
  netpoll::Notification second;
  ASSERT_TRUE(pool->TrySubmit([&] { second.Notify(); }, 2).ok());
  EXPECT_TRUE(second.WaitForNotificationWithTimeout(absl::Seconds(10)));
  const absl::Time start = absl::Now();
  pool->Stop();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
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
