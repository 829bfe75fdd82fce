#include "netpoll/timer_queue.h"

#include <time.h>

#include <utility>

namespace netpoll {

absl::Time MonotonicNow() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return absl::UnixEpoch() + absl::Seconds(ts.tv_sec) + absl::Nanoseconds(ts.tv_nsec);
}

void TimerQueue::Schedule(TimerId id, absl::Time when, absl::Duration interval, Callback callback) {
  timers_[id] = Timer{when, interval, std::move(callback)};
  heap_.push(HeapEntry{when, id});
}

bool TimerQueue::Cancel(TimerId id) {
  if (timers_.erase(id) == 0) return false;
  MaybeCompact();
  return true;
}

void TimerQueue::MaybeCompact() {
  // Amortized O(1): a rebuild costs O(live) and follows at least
  // live + kSlack cancellations.
  constexpr size_t kSlack = 1024;
  if (heap_.size() <= 2 * timers_.size() + kSlack) return;
  std::vector<HeapEntry> live;
  live.reserve(timers_.size());
  for (const auto& [id, timer] : timers_) live.push_back(HeapEntry{timer.when, id});
  heap_ = decltype(heap_)(std::greater<>(), std::move(live));
}

void TimerQueue::DropCancelledTop() {
  while (!heap_.empty()) {
    const HeapEntry& top = heap_.top();
    auto it = timers_.find(top.id);
    // Stale when cancelled, or when a repeating timer was re-pushed with a
    // later time (its old entry no longer matches).
    if (it != timers_.end() && it->second.when == top.when) return;
    heap_.pop();
  }
}

int TimerQueue::RunExpired(absl::Time now) {
  int ran = 0;
  while (true) {
    DropCancelledTop();
    if (heap_.empty() || heap_.top().when > now) break;
    HeapEntry entry = heap_.top();
    heap_.pop();
    auto it = timers_.find(entry.id);
    Timer& timer = it->second;
    if (timer.interval > absl::ZeroDuration()) {
      // Reschedule first so that the callback may cancel itself.
      timer.when += timer.interval;
      if (timer.when <= now) timer.when = now + timer.interval;  // fell behind: skip
      heap_.push(HeapEntry{timer.when, entry.id});
      // Run a moved-out copy: the callback may cancel or add timers, which
      // can rehash timers_.
      Callback callback = std::move(timer.callback);
      callback();
      ++ran;
      auto again = timers_.find(entry.id);
      if (again != timers_.end()) again->second.callback = std::move(callback);
    } else {
      Callback callback = std::move(timer.callback);
      timers_.erase(it);
      callback();
      ++ran;
    }
  }
  return ran;
}

absl::Duration TimerQueue::TimeUntilNext(absl::Time now) {
  DropCancelledTop();
  if (heap_.empty()) return absl::InfiniteDuration();
  absl::Duration d = heap_.top().when - now;
  return d < absl::ZeroDuration() ? absl::ZeroDuration() : d;
}

}  // namespace netpoll
