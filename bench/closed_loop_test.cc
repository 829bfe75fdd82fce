#include "bench/closed_loop.h"

#include <unistd.h>

#include <atomic>
#include <deque>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"

namespace bench {
namespace {

// A fake asynchronous RPC library: Issue() queues the slot; one completion
// thread answers queued calls in order, failing every `fail_every`-th, until
// told to hold them (then they wait for Release()).
class FakeBackend {
 public:
  explicit FakeBackend(int fail_every) : fail_every_(fail_every) {}
  ~FakeBackend() {
    {
      netpoll::MutexLock lock(&mu_);
      quit_ = true;
      cv_.SignalAll();
    }
    if (thread_.joinable()) thread_.join();
  }

  void Start(ClosedLoop* loop) {
    loop_ = loop;
    thread_ = std::thread([this] { Serve(); });
  }
  void Issue(int slot) {
    const int now = in_flight_.fetch_add(1) + 1;
    int max = max_in_flight_.load();
    while (now > max && !max_in_flight_.compare_exchange_weak(max, now)) {
    }
    netpoll::MutexLock lock(&mu_);
    queue_.push_back(slot);
    cv_.SignalAll();
  }
  // Waits until every queued call has been answered and Done() returned.
  void WaitIdle() {
    netpoll::MutexLock lock(&mu_);
    while (!queue_.empty() || serving_) cv_.Wait(&mu_);
  }
  void Hold() {
    netpoll::MutexLock lock(&mu_);
    hold_ = true;
  }
  void Release() {
    netpoll::MutexLock lock(&mu_);
    hold_ = false;
    cv_.SignalAll();
  }
  int max_in_flight() const { return max_in_flight_.load(); }

 private:
  void Serve() {
    int64_t n = 0;
    while (true) {
      int slot;
      {
        netpoll::MutexLock lock(&mu_);
        while (!quit_ && (hold_ || queue_.empty())) cv_.Wait(&mu_);
        if (quit_) return;
        slot = queue_.front();
        queue_.pop_front();
        serving_ = true;
      }
      in_flight_.fetch_sub(1);
      ++n;
      loop_->Done(slot, fail_every_ > 0 && n % fail_every_ == 0 ? absl::UnavailableError("injected")
                                                                : absl::OkStatus());
      netpoll::MutexLock lock(&mu_);
      serving_ = false;
      cv_.SignalAll();
    }
  }

  const int fail_every_;
  ClosedLoop* loop_ = nullptr;
  std::atomic<int> in_flight_{0};
  std::atomic<int> max_in_flight_{0};
  netpoll::Mutex mu_;
  netpoll::CondVar cv_;
  std::deque<int> queue_ ABSL_GUARDED_BY(mu_);
  bool hold_ ABSL_GUARDED_BY(mu_) = false;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  bool quit_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

ClosedLoopOptions ShortRun(int concurrency) {
  ClosedLoopOptions o;
  o.concurrency = concurrency;
  o.warmup_s = 0.05;
  o.duration_s = 0.2;
  o.drain_timeout_s = 2;
  o.progress = false;
  return o;
}

TEST(ClosedLoopTest, KeepsConcurrencyOutstandingAndMeasuresTheWindow) {
  FakeBackend backend(/*fail_every=*/0);
  ClosedLoop loop(ShortRun(8), [&](int slot) { backend.Issue(slot); });
  backend.Start(&loop);
  LoadResult r = loop.Run();
  EXPECT_GT(r.requests, 100);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.undrained, 0);
  EXPECT_EQ(r.concurrency, 8);
  EXPECT_EQ(backend.max_in_flight(), 8);
  EXPECT_GT(r.qps(), 0);
  EXPECT_LE(r.p50_us, r.p99_us);
  EXPECT_LE(r.p99_us, r.max_us);
  EXPECT_NEAR(r.window_s, 0.2, 0.1);           // the CPU readings' window, close to duration_s
  EXPECT_FALSE(r.server_cpu_pct.has_value());  // no --server_pid
}

TEST(ClosedLoopTest, CountsErrorsAndKeepsTheFirstOnesText) {
  FakeBackend backend(/*fail_every=*/10);
  ClosedLoop loop(ShortRun(4), [&](int slot) { backend.Issue(slot); });
  backend.Start(&loop);
  LoadResult r = loop.Run();
  EXPECT_GT(r.errors, 0);
  EXPECT_GT(r.requests, 0);
  EXPECT_EQ(r.first_error, "UNAVAILABLE: injected");
  EXPECT_EQ(r.undrained, 0);
}

// With a think time each slot waits that long after a completion before its
// next call, so the rate is bounded by concurrency / think time, and the
// pause is not counted as latency.
TEST(ClosedLoopTest, ThinkTimePacesEachSlotAndIsNotLatency) {
  FakeBackend backend(/*fail_every=*/0);
  ClosedLoopOptions options = ShortRun(2);
  options.think_time_s = 0.02;
  ClosedLoop loop(options, [&](int slot) { backend.Issue(slot); });
  backend.Start(&loop);
  LoadResult r = loop.Run();
  // 0.2 s window: at most 2 slots x (0.2 / 0.02 + 1) calls.
  EXPECT_GE(r.requests, 2);
  EXPECT_LE(r.requests, 22);
  EXPECT_EQ(r.errors, 0);
  EXPECT_EQ(r.undrained, 0);
  EXPECT_LT(r.p50_us, 20000);  // the fake answers at once; 20 ms is the pause
}

TEST(ClosedLoopTest, ReportsCallsThatNeverCompleteAsUndrained) {
  FakeBackend backend(/*fail_every=*/0);
  ClosedLoopOptions options = ShortRun(3);
  options.drain_timeout_s = 0.1;
  ClosedLoop loop(options, [&](int slot) { backend.Issue(slot); });
  backend.Hold();
  backend.Start(&loop);
  LoadResult r = loop.Run();
  EXPECT_EQ(r.undrained, 3);
  EXPECT_EQ(r.requests, 0);
  // Late completions are still accepted and issue nothing; the loop must
  // outlive them.
  backend.Release();
  backend.WaitIdle();
}

TEST(ClosedLoopTest, ReadsTheServersCpuAndMemory) {
  FakeBackend backend(/*fail_every=*/0);
  ClosedLoopOptions options = ShortRun(1);
  options.server_pid = getpid();  // this process stands in for the server
  ClosedLoop loop(options, [&](int slot) { backend.Issue(slot); });
  backend.Start(&loop);
  LoadResult r = loop.Run();
  ASSERT_TRUE(r.server_cpu_pct.has_value());
  EXPECT_GT(*r.server_cpu_pct, 0);
  ASSERT_TRUE(r.server_peak_rss_kib.has_value());
  EXPECT_GT(*r.server_peak_rss_kib, 0);
}

}  // namespace
}  // namespace bench
