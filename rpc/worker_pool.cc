#include "rpc/worker_pool.h"

#include <pthread.h>

#include <utility>

#include "absl/strings/str_cat.h"

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
  {
    netpoll::MutexLock lock(&mu_);
    if (stopping_) return absl::FailedPreconditionError("worker pool is stopping");
    if (queue_.size() >= options_.max_queued_tasks) {
      return absl::ResourceExhaustedError(
          absl::StrCat("worker queue is full (", options_.max_queued_tasks, " tasks)"));
    }
    queue_.push_back(std::move(task));
  }
  cv_.Signal();
  return absl::OkStatus();
}

void WorkerPool::Stop() {
  netpoll::MutexLock stop_lock(&stop_mu_);
  {
    netpoll::MutexLock lock(&mu_);
    stopping_ = true;
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

void WorkerPool::WorkerMain() {
  for (;;) {
    Task task;
    {
      netpoll::MutexLock lock(&mu_);
      while (queue_.empty() && !stopping_) cv_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping and drained
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

}  // namespace nprpc
