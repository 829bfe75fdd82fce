// Mutex, MutexLock, CondVar and Notification: the project's locks.
//
// Thin wrappers over std::mutex and std::condition_variable that carry
// Abseil's thread-safety annotations, so ABSL_GUARDED_BY(mu_) works as usual.
//
// Why not absl::Mutex directly: the project links Debian's prebuilt Abseil,
// which (1) is compiled without NDEBUG, so every absl::Mutex operation runs
// deadlock detection (measured with callgrind: about a third of an echo
// server's user-space instructions), and (2) is not compiled with
// -fsanitize=thread, so TSan cannot see its happens-before edges. pthread
// mutexes are fast and TSan intercepts them.
//
//   netpoll::Mutex mu_;
//   std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
//   ...
//   netpoll::MutexLock lock(&mu_);
//
// Thread safety: every method is safe from any thread.
#ifndef NETPOLL_MUTEX_H_
#define NETPOLL_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace netpoll {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) { return mu_.try_lock(); }
  // Documentation only (std::mutex cannot tell who holds it).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

 private:
  Mutex* const mu_;  // not owned; outlives this lock
};

// A condition variable for Mutex. Waits may wake spuriously: loop on the
// predicate.
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held; the caller's MutexLock unlocks it
  }
  // Returns true on timeout.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    std::cv_status result = std::cv_status::no_timeout;
    if (deadline == absl::InfiniteFuture()) {
      cv_.wait(lock);
    } else {
      result = cv_.wait_for(lock, absl::ToChronoNanoseconds(deadline - absl::Now()));
    }
    lock.release();
    return result == std::cv_status::timeout;
  }
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return WaitWithDeadline(mu, absl::Now() + timeout);
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A one-shot event: Notify() once, WaitForNotification() from any thread.
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    cv_.SignalAll();
  }
  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() {
    MutexLock lock(&mu_);
    while (!notified_) cv_.Wait(&mu_);
  }
  // Returns true when notified before the timeout.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    absl::Time deadline = absl::Now() + timeout;
    MutexLock lock(&mu_);
    while (!notified_) {
      if (cv_.WaitWithDeadline(&mu_, deadline)) return notified_;
    }
    return true;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace netpoll

#endif  // NETPOLL_MUTEX_H_
