#include "rpc/internal/testing/fake_clock.h"

#include <algorithm>

namespace nprpc::testing {

absl::Time FakeClock::Now() {
  netpoll::MutexLock lock(&mu_);
  return now_;
}

Clock::TimerId FakeClock::RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) {
  netpoll::MutexLock lock(&mu_);
  TimerId id = next_id_++;
  timers_.emplace(std::make_pair(now_ + std::max(delay, absl::ZeroDuration()), id), std::move(fn));
  return id;
}

void FakeClock::Cancel(TimerId id) {
  netpoll::MutexLock lock(&mu_);
  for (auto it = timers_.begin(); it != timers_.end(); ++it) {
    if (it->first.second == id) {
      timers_.erase(it);
      return;
    }
  }
}

void FakeClock::Advance(absl::Duration delta) { AdvanceTo(Now() + delta); }

void FakeClock::AdvanceTo(absl::Time when) {
  while (true) {
    absl::AnyInvocable<void()> fn;
    {
      netpoll::MutexLock lock(&mu_);
      if (timers_.empty() || timers_.begin()->first.first > when) {
        now_ = std::max(now_, when);
        return;
      }
      auto first = timers_.begin();
      now_ = std::max(now_, first->first.first);
      fn = std::move(first->second);
      timers_.erase(first);
    }
    fn();
  }
}

size_t FakeClock::pending() const {
  netpoll::MutexLock lock(&mu_);
  return timers_.size();
}

absl::Time FakeClock::next_due() const {
  netpoll::MutexLock lock(&mu_);
  return timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first.first;
}

}  // namespace nprpc::testing
