// FakeClock: a Clock in virtual time for tests. Time stands still until the
// test advances it; Advance() runs the timers that fall due, in order of due
// time (then of scheduling), on the calling thread, each with Now() at its
// due time.
//
//   FakeClock clock;  // starts at the Unix epoch + 1000 s
//   clock.RunAfter(absl::Milliseconds(5), [] { ... });
//   clock.Advance(absl::Milliseconds(10));  // runs it, at +5 ms
//
// Thread safety: every method is safe from any thread; timers run on the
// thread that calls Advance(), without the clock's lock held (they may
// schedule or cancel timers).
#ifndef RPC_INTERNAL_TESTING_FAKE_CLOCK_H_
#define RPC_INTERNAL_TESTING_FAKE_CLOCK_H_

#include <cstddef>
#include <map>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "rpc/internal/clock.h"

namespace nprpc::testing {

class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::FromUnixSeconds(1000)) : now_(start) {}

  absl::Time Now() override;
  TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) override;
  void Cancel(TimerId id) override;

  // Moves time forward by `delta`, running every timer due by then
  // (including timers those timers schedule).
  void Advance(absl::Duration delta);
  void AdvanceTo(absl::Time when);
  // Timers scheduled and neither run nor cancelled.
  size_t pending() const;
  // The due time of the earliest pending timer (InfiniteFuture: none).
  absl::Time next_due() const;

 private:
  mutable netpoll::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  TimerId next_id_ ABSL_GUARDED_BY(mu_) = 1;
  // By (due time, id): due order, then scheduling order.
  std::map<std::pair<absl::Time, TimerId>, absl::AnyInvocable<void()>> timers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace nprpc::testing

#endif  // RPC_INTERNAL_TESTING_FAKE_CLOCK_H_
