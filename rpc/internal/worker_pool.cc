#include "rpc/internal/worker_pool.h"

#include <pthread.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/timer_queue.h"

namespace nprpc {

namespace {

size_t HardLimit(size_t max_queued_tasks) {
  constexpr size_t kMax = std::numeric_limits<size_t>::max();
  return max_queued_tasks > kMax / WorkerPool::kHardLimitFactor
             ? kMax
             : max_queued_tasks * WorkerPool::kHardLimitFactor;
}

}  // namespace

WorkerPool::WorkerPool(const WorkerPoolOptions& options)
    : options_(options), hard_limit_(HardLimit(options.max_queued_tasks)) {}

absl::StatusOr<std::unique_ptr<WorkerPool>> WorkerPool::Create(const WorkerPoolOptions& options) {
  if (options.num_threads < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("WorkerPool needs at least one thread, got ", options.num_threads));
  }
  if (options.max_queued_tasks < 1) {
    return absl::InvalidArgumentError("WorkerPool max_queued_tasks must be >= 1");
  }
  if (options.idle_after <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("WorkerPool idle_after must be > 0");
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

WorkerPool::~WorkerPool() {
  Stop();
  // Stop() ran every queued task: only spares are left.
  netpoll::MutexLock lock(&mu_);
  while (spare_nodes_ != nullptr) delete std::exchange(spare_nodes_, spare_nodes_->next);
  while (spare_keys_ != nullptr) delete std::exchange(spare_keys_, spare_keys_->next);
}

absl::Status WorkerPool::Submit(Task&& task, uint64_t key) {
  bool refused = false;
  bool signal = false;
  // What a refusal reports (share 0: the hard limit); the message is built
  // after unlocking mu_.
  size_t total, held = 0, share = 0, keys = 0;
  {
    netpoll::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("worker pool is stopping");
    total = total_;
    refused = total >= hard_limit_;
    if (!refused) {
      auto [it, inserted] = keys_.try_emplace(key, nullptr);
      if (!inserted && total >= options_.max_queued_tasks) {
        // A new key holds 0, below any share; an old one may be at its share.
        keys = keys_.size();
        share = std::max<size_t>(1, options_.max_queued_tasks / keys);
        held = it->second->size;
        refused = held >= share;
      }
      if (!refused) {
        if (inserted) it->second = AddKeyLocked(key);
        PushLocked(it->second, std::move(task));
        // The polling worker (if any) takes one task; wake a sleeper for more.
        const size_t for_poller = polling_.load(std::memory_order_acquire) ? 1 : 0;
        signal = sleeping_ > 0 && total_ > for_poller;
      }
    }
  }
  if (refused) {
    if (share == 0) {
      return absl::ResourceExhaustedError(
          absl::StrCat("worker queue is full (", total, " tasks, the hard limit of ",
                       kHardLimitFactor, " x ", options_.max_queued_tasks, ")"));
    }
    return absl::ResourceExhaustedError(
        absl::StrCat("worker queue is full (", total, " tasks; this key holds ", held,
                     ", its share of ", options_.max_queued_tasks, " among ", keys, " keys)"));
  }
  if (signal) cv_.Signal();
  return absl::OkStatus();
}

WorkerPool::KeyQueue* WorkerPool::AddKeyLocked(uint64_t key) {
  KeyQueue* q;
  if (spare_keys_ != nullptr) {
    q = std::exchange(spare_keys_, spare_keys_->next);
    --num_spare_keys_;
  } else {
    q = new KeyQueue;
  }
  q->key = key;
  q->next = nullptr;
  if (ring_tail_ == nullptr) {
    ring_head_ = q;
  } else {
    ring_tail_->next = q;
  }
  ring_tail_ = q;
  return q;
}

void WorkerPool::PushLocked(KeyQueue* q, Task&& task) {
  TaskNode* node;
  if (spare_nodes_ != nullptr) {
    node = std::exchange(spare_nodes_, spare_nodes_->next);
    --num_spare_nodes_;
    node->next = nullptr;
  } else {
    node = new TaskNode;
  }
  node->task = std::move(task);
  if (q->tail == nullptr) {
    q->head = node;
  } else {
    q->tail->next = node;
  }
  q->tail = node;
  ++q->size;
  ++total_;
  queued_.store(total_, std::memory_order_release);
}

void WorkerPool::TakeLocked(Task* task, std::unique_ptr<TaskNode>* free_node,
                            std::unique_ptr<KeyQueue>* free_key) {
  KeyQueue* q = ring_head_;
  ring_head_ = q->next;
  if (ring_head_ == nullptr) ring_tail_ = nullptr;
  q->next = nullptr;

  TaskNode* node = q->head;
  q->head = node->next;
  --q->size;
  if (q->size > 0) {
    // Back of the ring.
    if (ring_tail_ == nullptr) {
      ring_head_ = q;
    } else {
      ring_tail_->next = q;
    }
    ring_tail_ = q;
  } else {
    q->tail = nullptr;
    keys_.erase(q->key);
    if (num_spare_keys_ < kMaxSpare) {
      q->next = spare_keys_;
      spare_keys_ = q;
      ++num_spare_keys_;
    } else {
      free_key->reset(q);
    }
  }
  --total_;
  queued_.store(total_, std::memory_order_release);

  *task = std::move(node->task);
  if (num_spare_nodes_ < kMaxSpare) {
    node->next = spare_nodes_;
    spare_nodes_ = node;
    ++num_spare_nodes_;
  } else {
    free_node->reset(node);
  }
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
  return total_;
}

size_t WorkerPool::queued_keys() {
  netpoll::MutexLock lock(&mu_);
  return keys_.size();
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
  bool ran_task = false;  // since the last on_idle
  for (;;) {
    if (options_.busy_poll > absl::ZeroDuration() && queued_.load(std::memory_order_acquire) == 0) {
      BusyPoll(budget);
    }
    Task task;
    std::unique_ptr<TaskNode> free_node;
    std::unique_ptr<KeyQueue> free_key;
    // Set when idle: what this worker frees after unlocking mu_.
    bool idle = false;
    TaskNode* idle_nodes = nullptr;
    KeyQueue* idle_keys = nullptr;
    absl::flat_hash_map<uint64_t, KeyQueue*> idle_table;
    {
      netpoll::MutexLock lock(&mu_);
      absl::Time idle_at = absl::InfiniteFuture();
      while (total_ == 0 && !stopping_) {
        // Read the clock only when about to wait (not on every task).
        if (ran_task && idle_at == absl::InfiniteFuture()) {
          idle_at = absl::Now() + options_.idle_after;
        }
        ++sleeping_;
        const bool timed_out = cv_.WaitWithDeadline(&mu_, idle_at);
        --sleeping_;
        if (timed_out && total_ == 0 && !stopping_) {
          idle = true;
          break;
        }
      }
      if (idle) {
        // Returns the memory of the last burst: the spares and the key
        // table (empty, since total_ == 0).
        idle_nodes = std::exchange(spare_nodes_, nullptr);
        num_spare_nodes_ = 0;
        idle_keys = std::exchange(spare_keys_, nullptr);
        num_spare_keys_ = 0;
        idle_table.swap(keys_);
      } else {
        if (total_ == 0) return;  // stopping and drained
        TakeLocked(&task, &free_node, &free_key);
      }
    }
    if (idle) {
      while (idle_nodes != nullptr) delete std::exchange(idle_nodes, idle_nodes->next);
      while (idle_keys != nullptr) delete std::exchange(idle_keys, idle_keys->next);
      ran_task = false;
      if (options_.on_idle) options_.on_idle();
      continue;
    }
    free_node.reset();
    free_key.reset();
    task();
    ran_task = true;
  }
}

}  // namespace nprpc
