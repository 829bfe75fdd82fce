// TimerQueue: the timers of one EventLoop, on a binary min-heap.
//
// Schedule() returns a TimerId; Cancel() removes the timer lazily (the heap
// entry is skipped when it reaches the top), so both are O(log n) or better.
// Stale entries are dropped when they reach the top, and the heap is rebuilt
// from the live timers once stale entries outnumber them (plus a slack): a
// live timer due first (a 1 s housekeeping timer) would otherwise keep every
// cancelled entry behind it, e.g. the deadline timers of 300k calls/s over
// their 5 s deadline, ~50 MiB.
// A repeating timer is rescheduled from its previous due time, not from when
// it ran, so it does not drift.
//
// Thread safety: loop thread only. EventLoop::RunAfter/RunEvery/Cancel are
// the thread-safe entry points.
#ifndef NETPOLL_TIMER_QUEUE_H_
#define NETPOLL_TIMER_QUEUE_H_

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace netpoll {

using TimerId = uint64_t;
inline constexpr TimerId kInvalidTimerId = 0;

// Monotonic time, for timers and timeouts (unaffected by wall-clock jumps).
absl::Time MonotonicNow();

class TimerQueue {
 public:
  using Callback = absl::AnyInvocable<void()>;

  TimerQueue() = default;
  TimerQueue(const TimerQueue&) = delete;
  TimerQueue& operator=(const TimerQueue&) = delete;

  // Runs `callback` at `when` (MonotonicNow() timeline), then every `interval`
  // when interval > 0. `id` comes from the caller (EventLoop allocates ids so
  // that they can be handed out on any thread).
  void Schedule(TimerId id, absl::Time when, absl::Duration interval, Callback callback);

  // Returns true when the timer was pending. Safe to call from inside a
  // timer callback, also for the running timer (stops a repeating one).
  bool Cancel(TimerId id);

  // Runs every timer due at or before `now`. Returns how many ran.
  int RunExpired(absl::Time now);

  // Time until the earliest live timer, or absl::InfiniteDuration() if none.
  absl::Duration TimeUntilNext(absl::Time now);

  size_t size() const { return timers_.size(); }
  // Heap entries, live and stale (for tests).
  size_t heap_entries() const { return heap_.size(); }

 private:
  struct Timer {
    absl::Time when;
    absl::Duration interval;
    Callback callback;
  };
  struct HeapEntry {
    absl::Time when;
    TimerId id;
    bool operator>(const HeapEntry& other) const {
      return when != other.when ? when > other.when : id > other.id;
    }
  };
  void DropCancelledTop();
  // Rebuilds the heap from the live timers when stale entries dominate.
  void MaybeCompact();

  std::priority_queue<HeapEntry, std::vector<HeapEntry>, std::greater<>> heap_;
  absl::flat_hash_map<TimerId, Timer> timers_;  // live timers only
};

}  // namespace netpoll

#endif  // NETPOLL_TIMER_QUEUE_H_
