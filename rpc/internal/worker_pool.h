// WorkerPool: a fixed set of threads running tasks from one bounded queue.
//
// The RPC server runs handlers here so that the I/O loops only decode and
// write. The queue is bounded: when it is full, TrySubmit() refuses the task
// at once (the server then answers ELIMIT) instead of letting a flood of
// requests grow memory without limit.
//
//   auto pool = nprpc::WorkerPool::Create({.num_threads = 4, .max_queued_tasks = 1024});
//   absl::Status s = (*pool)->TrySubmit([] { ... });
//   if (absl::IsResourceExhausted(s)) { /* queue full: shed */ }
//
// Stop() lets the threads finish every task already queued, then joins them:
// a task accepted by TrySubmit() always runs exactly once.
//
// Thread safety: TrySubmit(), queued_tasks() and num_threads() are safe from
// any thread, tasks included. Stop() and the destructor must not be called
// from a task (a worker cannot join itself).
#ifndef RPC_INTERNAL_WORKER_POOL_H_
#define RPC_INTERNAL_WORKER_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/busy_poll_budget.h"
#include "netpoll/mutex.h"

namespace nprpc {

struct WorkerPoolOptions {
  // Threads; must be >= 1.
  int num_threads = 4;
  // Tasks waiting for a thread (not counting running ones); must be >= 1.
  size_t max_queued_tasks = 10000;
  // Thread name prefix (shows in top/gdb; truncated to 15 bytes by Linux).
  std::string name = "nprpc-worker";
  // Busy polling: a worker that finishes a task and finds the queue empty
  // checks it again, yielding the CPU in between, for up to this long before
  // it sleeps, so that a task submitted meanwhile starts without a futex
  // wake-up. One worker polls at a time; polls that find nothing may use an
  // eighth of its time (netpoll::BusyPollBudget). Zero: never poll.
  absl::Duration busy_poll = absl::ZeroDuration();
};

class WorkerPool {
 public:
  using Task = absl::AnyInvocable<void()>;

  // InvalidArgument for a bad option; Internal when a thread cannot start.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(const WorkerPoolOptions& options);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`. ResourceExhausted when max_queued_tasks are already
  // waiting, FailedPrecondition after Stop() began; the task is then dropped
  // without running.
  absl::Status TrySubmit(Task task);

  // Refuses new tasks, runs the queued ones, joins the threads. Idempotent.
  void Stop();

  size_t queued_tasks();
  int num_threads() const { return static_cast<int>(threads_.size()); }
  // Polls that found a task (see WorkerPoolOptions::busy_poll).
  int64_t busy_poll_hits() const { return busy_poll_hits_.load(std::memory_order_relaxed); }

 private:
  explicit WorkerPool(const WorkerPoolOptions& options) : options_(options) {}
  void WorkerMain();
  // Polls the queue (one worker at a time) while `budget` allows; returns
  // when a task is queued, Stop() began, or the poll time is over.
  void BusyPoll(netpoll::BusyPollBudget& budget);

  // Constant after Create().
  const WorkerPoolOptions options_;
  std::vector<std::thread> threads_;

  netpoll::Mutex mu_;
  netpoll::CondVar cv_;  // signalled when a task is queued or stopping_ is set
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;  // workers waiting on cv_
  // Read without mu_ by the polling worker.
  std::atomic<size_t> queued_{0};        // queue_.size()
  std::atomic<bool> stop_polls_{false};  // stopping_
  // Whether a worker polls now; at most one does. A submitter does not
  // signal for the one task the poller will take: after its poll the poller
  // always checks the queue under mu_ before it sleeps.
  std::atomic<bool> polling_{false};
  std::atomic<int64_t> busy_poll_hits_{0};

  netpoll::Mutex stop_mu_;  // serializes Stop() calls (the join)
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_WORKER_POOL_H_
