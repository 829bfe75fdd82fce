#include "rpc/task.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "rpc/server_context.h"

namespace nprpc {
namespace {

// Resumes awaiting coroutines on threads of its own, after a delay: a stand-in
// for an I/O loop completing a call.
class ThreadResumer {
 public:
  ~ThreadResumer() {
    for (std::thread& t : threads_) t.join();
  }

  auto After(absl::Duration delay) {
    struct Awaiter {
      ThreadResumer* resumer;
      absl::Duration delay;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        netpoll::MutexLock lock(&resumer->mu_);
        resumer->threads_.emplace_back([h, d = delay] {
          absl::SleepFor(d);
          h.resume();
        });
      }
      std::thread::id await_resume() const noexcept { return std::this_thread::get_id(); }
    };
    return Awaiter{this, delay};
  }

 private:
  netpoll::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

// Holds each awaiting coroutine until `n` of them are suspended at once, then
// resumes each on a thread of its own: only children that run concurrently
// all get past it. Children that run one after another would each wait
// alone; they are let go after a (generous) timeout and counted.
class Rendezvous {
 public:
  explicit Rendezvous(int n) : n_(n) {}
  ~Rendezvous() {
    for (std::thread& t : threads_) t.join();
  }

  auto Arrive() {
    struct Awaiter {
      Rendezvous* r;
      bool await_ready() const noexcept { return false; }
      void await_suspend(std::coroutine_handle<> h) {
        netpoll::MutexLock lock(&r->mu_);
        if (++r->arrived_ == r->n_) r->all_here_.Notify();
        r->threads_.emplace_back([h, r = r] {
          if (!r->all_here_.WaitForNotificationWithTimeout(absl::Seconds(10))) r->alone_++;
          h.resume();
        });
      }
      void await_resume() const noexcept {}
    };
    return Awaiter{this};
  }
  // Coroutines that were let go without the others.
  int alone() const { return alone_.load(); }

 private:
  const int n_;
  netpoll::Mutex mu_;
  int arrived_ ABSL_GUARDED_BY(mu_) = 0;
  netpoll::Notification all_here_;
  std::atomic<int> alone_{0};
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
};

Task<int> Constant(int value, bool* started = nullptr) {
  if (started != nullptr) *started = true;
  co_return value;
}

Task<int> Add(int a, int b) { co_return co_await Constant(a) + co_await Constant(b); }

Task<int> Depth(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await Depth(n - 1);
}

TEST(TaskTest, IsLazyUntilAwaited) {
  bool started = false;
  Task<int> task = Constant(7, &started);
  EXPECT_FALSE(started);
  EXPECT_TRUE(task.valid());
  EXPECT_EQ(BlockOn(std::move(task)), 7);
  EXPECT_TRUE(started);
}

TEST(TaskTest, DestroyingAnUnstartedTaskFreesItsFrame) {
  bool started = false;
  { Task<int> task = Constant(1, &started); }
  EXPECT_FALSE(started);  // and ASan sees no leak
}

TEST(TaskTest, AwaitsNestedTasks) { EXPECT_EQ(BlockOn(Add(2, 3)), 5); }

TEST(TaskTest, LoopsOfSynchronousAwaitsDoNotGrowTheStack) {
  // A million awaits of tasks that finish at once, in every build mode
  // (8 MiB of stack would not hold a million nested frames).
  auto loop = []() -> Task<int64_t> {
    int64_t sum = 0;
    for (int i = 0; i < 1000000; ++i) sum += co_await Constant(1);
    co_return sum;
  };
  EXPECT_EQ(BlockOn(loop()), 1000000);
}

TEST(TaskTest, RecursiveTasks) { EXPECT_EQ(BlockOn(Depth(1000)), 1000); }

TEST(TaskTest, ChainsOfAsynchronousCompletions) {
  // The leaf finishes on another thread; each level hands back to its awaiter.
  ThreadResumer resumer;
  struct Chain {
    static Task<int> Run(ThreadResumer* r, int n) {
      if (n == 0) {
        co_await r->After(absl::Milliseconds(1));
        co_return 0;
      }
      co_return 1 + co_await Run(r, n - 1);
    }
  };
  EXPECT_EQ(BlockOn(Chain::Run(&resumer, 1000)), 1000);
}

TEST(TaskTest, VoidTasks) {
  int runs = 0;
  auto body = [](int* runs) -> Task<> {
    ++*runs;
    co_return;
  };
  BlockOn(body(&runs));
  EXPECT_EQ(runs, 1);
}

TEST(TaskTest, MoveOnlyResults) {
  auto make = []() -> Task<std::unique_ptr<int>> { co_return std::make_unique<int>(42); };
  std::unique_ptr<int> p = BlockOn(make());
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(*p, 42);
}

TEST(TaskTest, StatusOrResults) {
  auto fail = []() -> Task<absl::StatusOr<std::string>> { co_return absl::NotFoundError("nope"); };
  auto ok = []() -> Task<absl::StatusOr<std::string>> { co_return std::string("yes"); };
  EXPECT_EQ(BlockOn(fail()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(*BlockOn(ok()), "yes");
}

TEST(TaskTest, ResumesOnTheThreadThatCompletesTheAwait) {
  ThreadResumer resumer;
  auto body = [](ThreadResumer* r) -> Task<bool> {
    std::thread::id before = std::this_thread::get_id();
    std::thread::id after = co_await r->After(absl::Milliseconds(1));
    co_return before != after&& after == std::this_thread::get_id();
  };
  EXPECT_TRUE(BlockOn(body(&resumer)));
}

TEST(TaskTest, StartDetachedRunsTheCallbackOnceWithTheResult) {
  ThreadResumer resumer;
  netpoll::Notification done;
  std::atomic<int> calls{0};
  int value = 0;
  auto body = [](ThreadResumer* r) -> Task<int> {
    co_await r->After(absl::Milliseconds(5));
    co_return 9;
  };
  StartDetached(body(&resumer), absl::AnyInvocable<void(int)>([&](int v) {
                  value = v;
                  calls.fetch_add(1);
                  done.Notify();
                }));
  done.WaitForNotification();
  EXPECT_EQ(value, 9);
  EXPECT_EQ(calls.load(), 1);
}

TEST(TaskTest, StartDetachedRunsSynchronouslyWhenTheTaskNeverSuspends) {
  int value = 0;
  StartDetached(Constant(3), absl::AnyInvocable<void(int)>([&](int v) { value = v; }));
  EXPECT_EQ(value, 3);
}

TEST(WhenAllTest, RunsChildrenConcurrentlyAndKeepsArgumentOrder) {
  auto rendezvous = std::make_unique<Rendezvous>(3);
  auto slow = [](Rendezvous* r, int v) -> Task<int> {
    co_await r->Arrive();
    co_return v;
  };
  auto text = [](Rendezvous* r) -> Task<std::string> {
    co_await r->Arrive();
    co_return std::string("c");
  };
  auto parent = [&]() -> Task<std::tuple<int, int, std::string>> {
    Rendezvous* r = rendezvous.get();
    co_return co_await WhenAll(slow(r, 1), slow(r, 2), text(r));
  };
  auto [a, b, c] = BlockOn(parent());
  EXPECT_EQ(a, 1);
  EXPECT_EQ(b, 2);
  EXPECT_EQ(c, "c");
  EXPECT_EQ(rendezvous->alone(), 0) << "children ran one after another";
}

TEST(WhenAllTest, ChildrenThatFinishAtOnceDoNotSuspendTheParent) {
  auto parent = []() -> Task<int> {
    auto [a, b] = co_await WhenAll(Constant(1), Add(2, 3));
    co_return a + b;
  };
  EXPECT_EQ(BlockOn(parent()), 6);
}

TEST(WhenAllTest, Vector) {
  ThreadResumer resumer;
  auto child = [](ThreadResumer* r, int v) -> Task<int> {
    co_await r->After(absl::Milliseconds(v % 3));
    co_return v* v;
  };
  auto parent = [&]() -> Task<std::vector<int>> {
    std::vector<Task<int>> tasks;
    for (int i = 0; i < 20; ++i) tasks.push_back(child(&resumer, i));
    co_return co_await WhenAll(std::move(tasks));
  };
  std::vector<int> squares = BlockOn(parent());
  ASSERT_EQ(squares.size(), 20u);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(squares[i], i * i);
  auto none = []() -> Task<std::vector<int>> {
    co_return co_await WhenAll(std::vector<Task<int>>());
  };
  EXPECT_TRUE(BlockOn(none()).empty());
}

// ------------------------------------------------------------------ Context

Task<const ServerContext*> ContextHere() { co_return co_await CurrentTaskContext(); }

TEST(TaskContextTest, TaskTakesTheContextCurrentAtCreation) {
  ServerContext ctx;
  Task<const ServerContext*> task;
  {
    ScopedServerContext scope(&ctx);
    task = ContextHere();
  }
  EXPECT_EQ(BlockOn(std::move(task)), &ctx);
  EXPECT_EQ(BlockOn(ContextHere()), nullptr);
}

TEST(TaskContextTest, ChildrenInheritTheAwaitersContextAcrossThreads) {
  ThreadResumer resumer;
  ServerContext ctx;
  auto parent = [](ThreadResumer* r) -> Task<bool> {
    const ServerContext* mine = co_await CurrentTaskContext();
    co_await r->After(absl::Milliseconds(1));  // now on another thread
    const ServerContext* child = co_await ContextHere();
    auto [a, b] = co_await WhenAll(ContextHere(), ContextHere());
    co_return mine != nullptr&& child == mine&& a == mine&& b == mine;
  };
  Task<bool> task;
  {
    ScopedServerContext scope(&ctx);
    task = parent(&resumer);
  }
  EXPECT_TRUE(BlockOn(std::move(task)));
}

}  // namespace
}  // namespace nprpc
