// WorkerPool: a fixed set of threads running tasks from a bounded queue that
// is fair between keys.
//
// The RPC server runs handlers here so that the I/O loops only decode and
// write. Each task carries a key (the server: one per connection). The queue
// is bounded: when it is full, TrySubmit() refuses the task at once (the
// server then answers ELIMIT) instead of letting a flood of requests grow
// memory without limit.
//
//   auto pool = nprpc::WorkerPool::Create({.num_threads = 4, .max_queued_tasks = 1024});
//   absl::Status s = (*pool)->TrySubmit([] { ... }, connection_id);
//   if (absl::IsResourceExhausted(s)) { /* queue full: shed */ }
//
// Order. Tasks of one key are picked up in the order they were submitted.
// Keys are served in turn: the keys with queued tasks form a ring, a worker
// takes the oldest task of the key at the front of the ring, and that key goes
// to the back of the ring if it has more tasks. So a key with one queued task
// waits behind at most one task of each other key, not behind another key's
// whole flood. "In order" is the pickup order: with several threads, two tasks
// of one key may run at the same time. Submit and pickup are O(1).
//
// Admission. Let max = max_queued_tasks, total = tasks queued, n = keys with
// queued tasks, and a key's fair share = max(1, max / n). While total < max
// every task is admitted. When total >= max, a task is refused only if its
// key already holds its fair share or more; a key holding less (a new key
// holds 0) is still admitted. With one key this is the plain bound of max.
//
// The bound on the total. Past max, only keys below their share are admitted,
// and an admission leaves a key at its share at most. So while the same
// n <= max keys stay queued, the keys admitted past max hold at most
// n * (max / n) <= max together and the others at most what they held when
// the total reached max: the total stays at most 2 * max. Shares taken while
// fewer keys were queued, keys that come and go, or more keys than max let it
// grow further (roughly max * ln(keys), plus one task per key). Callers bound
// each key (the server caps each connection's calls in flight), but that
// bounds the total only in proportion to the number of keys, which an
// attacker chooses. Hence a hard ceiling of kHardLimitFactor * max = 2 * max
// queued tasks, at which every task is refused whatever its key holds. Twice
// max is what a stable set of keys can reach under the share rule, so the
// ceiling refuses a key below its share only when keys churn or outnumber max
// (many clients with few tasks each, where refusing is fair too), and memory
// stays within twice what the operator chose.
//
// Stop() lets the threads finish every task already queued, then joins them:
// a task accepted by TrySubmit() always runs exactly once.
//
// Idle hook. A worker that ran a task and then waited idle_after for work
// without getting any calls on_idle once, on its own thread (the server trims
// that thread's caches there), and then waits without calling it again until
// it has run another task. A worker that never ran a task does not call it.
// The idle worker also frees the pool's spare queue entries and its table of
// keys, so that the memory of a burst goes back once the burst is over.
//
// Thread safety: TrySubmit(), queued_tasks(), queued_keys(), num_threads()
// and busy_poll_hits() are safe from any thread, tasks and on_idle included.
// Stop() and the destructor must not be called from a task or from on_idle (a
// worker cannot join itself).
#ifndef RPC_INTERNAL_WORKER_POOL_H_
#define RPC_INTERNAL_WORKER_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  // Tasks waiting for a thread (not counting running ones) beyond which only
  // keys below their fair share are admitted; must be >= 1. The total never
  // exceeds 2 * max_queued_tasks (see the top of this file).
  size_t max_queued_tasks = 10000;
  // Thread name prefix (shows in top/gdb; truncated to 15 bytes by Linux).
  std::string name = "nprpc-worker";
  // Busy polling: a worker that finishes a task and finds the queue empty
  // checks it again, yielding the CPU in between, for up to this long before
  // it sleeps, so that a task submitted meanwhile starts without a futex
  // wake-up. One worker polls at a time; polls that find nothing may use an
  // eighth of its time (netpoll::BusyPollBudget). Zero: never poll.
  absl::Duration busy_poll = absl::ZeroDuration();
  // Called on a worker's thread once it has waited idle_after for work after
  // its last task (see the top of this file). Several workers may call it at
  // the same time. May be empty. It must not call Stop().
  std::function<void()> on_idle = nullptr;
  // Must be > 0; absl::InfiniteDuration(): a worker is never idle.
  absl::Duration idle_after = absl::Seconds(1);
};

class WorkerPool {
 public:
  using Task = absl::AnyInvocable<void()>;

  // The hard ceiling on queued tasks is this many times max_queued_tasks.
  static constexpr size_t kHardLimitFactor = 2;

  // InvalidArgument for a bad option; Internal when a thread cannot start.
  static absl::StatusOr<std::unique_ptr<WorkerPool>> Create(const WorkerPoolOptions& options);
  // Stop().
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task` under `key`. ResourceExhausted when the queue holds
  // max_queued_tasks or more and `key` holds its fair share or more, or when
  // it holds the hard ceiling; FailedPrecondition after Stop() began. A
  // refused task is dropped without running.
  absl::Status TrySubmit(Task task, uint64_t key) { return Submit(std::move(task), key); }
  // TrySubmit(task, 0): tasks submitted without a key share key 0.
  absl::Status TrySubmit(Task task) { return Submit(std::move(task), 0); }

  // Refuses new tasks, runs the queued ones, joins the threads. Idempotent.
  void Stop();

  // Tasks waiting for a thread.
  size_t queued_tasks();
  // Keys with tasks waiting for a thread.
  size_t queued_keys();
  int num_threads() const { return static_cast<int>(threads_.size()); }
  // Polls that found a task (see WorkerPoolOptions::busy_poll).
  int64_t busy_poll_hits() const { return busy_poll_hits_.load(std::memory_order_relaxed); }

 private:
  // A queued task. Spare ones are kept (up to kMaxSpare) so that a submit in
  // the steady state does not allocate.
  struct TaskNode {
    Task task;
    TaskNode* next = nullptr;  // the key's next task, or the next spare node
  };
  // The queued tasks of one key; exists while the key has queued tasks (and
  // kept as a spare afterwards, like TaskNode).
  struct KeyQueue {
    uint64_t key = 0;
    TaskNode* head = nullptr;  // oldest
    TaskNode* tail = nullptr;
    size_t size = 0;
    KeyQueue* next = nullptr;  // the next key in the ring, or the next spare
  };
  // Spare TaskNodes and KeyQueues kept, each.
  static constexpr size_t kMaxSpare = 1024;

  explicit WorkerPool(const WorkerPoolOptions& options);
  // TrySubmit(); takes a reference so that the task is moved once, into
  // the queue (this is on every call's path).
  absl::Status Submit(Task&& task, uint64_t key);
  void WorkerMain();
  // Polls the queue (one worker at a time) while `budget` allows; returns
  // when a task is queued, Stop() began, or the poll time is over.
  void BusyPoll(netpoll::BusyPollBudget& budget);
  // Puts a new key (not in keys_ yet) at the back of the ring.
  KeyQueue* AddKeyLocked(uint64_t key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Appends `task` to `q`.
  void PushLocked(KeyQueue* q, Task&& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Moves the next task in the ring order into *task; a node or key queue
  // that is not kept as a spare goes to *free_node / *free_key for the caller
  // to delete after unlocking mu_. Requires total_ > 0.
  void TakeLocked(Task* task, std::unique_ptr<TaskNode>* free_node,
                  std::unique_ptr<KeyQueue>* free_key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Constant after Create().
  const WorkerPoolOptions options_;
  const size_t hard_limit_;  // kHardLimitFactor * max_queued_tasks (saturated)
  std::vector<std::thread> threads_;

  netpoll::Mutex mu_;
  netpoll::CondVar cv_;  // signalled when a task is queued or stopping_ is set
  // Keys with queued tasks; each KeyQueue is owned here and is in the ring.
  absl::flat_hash_map<uint64_t, KeyQueue*> keys_ ABSL_GUARDED_BY(mu_);
  KeyQueue* ring_head_ ABSL_GUARDED_BY(mu_) = nullptr;  // served next
  KeyQueue* ring_tail_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t total_ ABSL_GUARDED_BY(mu_) = 0;  // queued tasks
  TaskNode* spare_nodes_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t num_spare_nodes_ ABSL_GUARDED_BY(mu_) = 0;
  KeyQueue* spare_keys_ ABSL_GUARDED_BY(mu_) = nullptr;
  size_t num_spare_keys_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  int sleeping_ ABSL_GUARDED_BY(mu_) = 0;  // workers waiting on cv_
  // Read without mu_ by the polling worker.
  std::atomic<size_t> queued_{0};        // total_
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
