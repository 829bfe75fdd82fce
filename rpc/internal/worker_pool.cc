#include "rpc/internal/worker_pool.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/timer_queue.h"

namespace nprpc {

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(const WorkerPoolOptions& options) {
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("WorkerPool needs at least one thread, got ", options.num_threads));
  }
  if (options.max_queued_tasks < 1) {
    return absl::InvalidArgumentError("WorkerPool max_queued_tasks must be >= 1");
  }
  std::unique_ptr<WorkerPool> pool(new WorkerPool(options));
  pool->threads_.reserve(options.num_threads);
  for (int i = 0; i < options.num_threads; ++i) {
    pool->threads_.emplace_back([p = pool.get()] { p->WorkerMain(); });
    std::string name = absl::StrCat(options.name, "-", i).substr(0, 15);
    pthread_setname_np(pool->threads_.back().native_handle(), name.c_str());
  }
  return pool;
}

WorkerPool::~WorkerPool() { Stop(); }

absl::Status WorkerPool::TrySubmit(Task task) {
  bool signal;
  {
    netpoll::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("worker pool is stopping");
    if (queue_.size() >= options_.max_queued_tasks) {
      return absl::ResourceExhaustedError(
          absl::StrCat("worker queue is full (", options_.max_queued_tasks, " tasks)"));
    }
    queue_.push_back(std::move(task));
    queued_.store(queue_.size(), std::memory_order_release);
    // The polling worker (if any) takes one task; wake a sleeper for more.
    const size_t for_poller = polling_.load(std::memory_order_acquire) ? 1 : 0;
    signal = sleeping_ > 0 && queue_.size() > for_poller;
  }
  if (signal) cv_.Signal();
  return absl::OkStatus();
}

void WorkerPool::Stop() {
  netpoll::MutexLock stop_lock(&stop_mu_);
  {
    netpoll::MutexLock lock(&mu_);
    stopping_ = true;
    stop_polls_.store(true, std::memory_order_release);
  }
  cv_.SignalAll();
  for (std::thread& t : threads_) {
    if (t.joinable()) t.join();
  }
}

size_t WorkerPool::queued_tasks() {
  netpoll::MutexLock lock(&mu_);
  return queue_.size();
}

void WorkerPool::BusyPoll(netpoll::BusyPollBudget& budget) {
  const absl::Time start = netpoll::MonotonicNow();
  if (!budget.MayPoll(start)) return;
  bool expected = false;
  if (!polling_.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) return;
  const bool found = budget.Poll(start, options_.busy_poll, [this] {
    return queued_.load(std::memory_order_acquire) > 0 ||
           stop_polls_.load(std::memory_order_acquire);
  });
  polling_.store(false, std::memory_order_release);
  if (found) busy_poll_hits_.fetch_add(1, std::memory_order_relaxed);
}

void WorkerPool::WorkerMain() {
  netpoll::BusyPollBudget budget(options_.busy_poll);
  for (;;) {
    if (options_.busy_poll > absl::ZeroDuration() && queued_.load(std::memory_order_acquire) == 0) {
      BusyPoll(budget);
    }
    Task task;
    {
      netpoll::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) {
        ++sleeping_;
        cv_.Wait(&mu_);
        --sleeping_;
      }
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
      queued_.store(queue_.size(), std::memory_order_release);
    }
    task();
  }
}

}  // namespace nprpc
