// Mutex, MutexLock and CondVar: absl::Mutex with ThreadSanitizer annotations.
//
// The project links Debian's prebuilt Abseil, which is not compiled with
// -fsanitize=thread, so TSan cannot see the happens-before edges inside
// absl::Mutex and reports every guarded access as a race. These wrappers tell
// TSan about the acquire/release themselves (a no-op in other builds) and keep
// absl's thread-safety annotations, so ABSL_GUARDED_BY(mu_) works as usual.
//
// Project code uses these instead of absl::Mutex, absl::CondVar and
// absl::Notification (whose internals TSan cannot see either).
//
//   netpoll::Mutex mu_;
//   std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
//   ...
//   netpoll::MutexLock lock(&mu_);
//
// Thread safety: every method is safe from any thread.
#ifndef NETPOLL_MUTEX_H_
#define NETPOLL_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define NETPOLL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NETPOLL_TSAN 1
#endif
#endif

#ifdef NETPOLL_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace netpoll {

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    Acquired();
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    Releasing();
    mu_.Unlock();
  }
  bool TryLock() ABSL_EXCLUSIVE_TRYLOCK_FUNCTION(true) {
    if (!mu_.TryLock()) return false;
    Acquired();
    return true;
  }
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() { mu_.AssertHeld(); }

 private:
  friend class CondVar;
  void Acquired() {
#ifdef NETPOLL_TSAN
    __tsan_acquire(this);
#endif
  }
  void Releasing() {
#ifdef NETPOLL_TSAN
    __tsan_release(this);
#endif
  }

  absl::Mutex mu_;
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
    mu->Releasing();
    cv_.Wait(&mu->mu_);
    mu->Acquired();
  }
  // Returns true on timeout.
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    mu->Releasing();
    bool timed_out = cv_.WaitWithDeadline(&mu->mu_, deadline);
    mu->Acquired();
    return timed_out;
  }
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return WaitWithDeadline(mu, absl::Now() + timeout);
  }
  void Signal() { cv_.Signal(); }
  void SignalAll() { cv_.SignalAll(); }

 private:
  absl::CondVar cv_;
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
