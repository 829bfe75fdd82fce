// Clock: the time and timers of the client's call controller and channel
// core (deadlines, retry backoff, backup requests, health probes, draining).
// LoopClock is the real one, over one netpoll::EventLoop; tests use
// testing::FakeClock (rpc/internal/testing/fake_clock.h) to run the same logic
// in virtual time.
//
//   LoopClock clock(loop);
//   TimerId id = clock.RunAfter(absl::Milliseconds(5), [] { ... });
//   clock.Cancel(id);  // a no-op once it ran
//
// Thread safety: every method of every Clock is safe from any thread. Timer
// callbacks run on the clock's thread (LoopClock: the loop thread), never
// inside RunAfter().
#ifndef RPC_INTERNAL_CLOCK_H_
#define RPC_INTERNAL_CLOCK_H_

#include <cstdint>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"

namespace nprpc {

class Clock {
 public:
  using TimerId = uint64_t;
  static constexpr TimerId kNoTimer = 0;

  virtual ~Clock() = default;
  virtual absl::Time Now() = 0;
  // Runs `fn` once after `delay` (at once, but not inside this call, when it
  // is not positive). Ids are never reused and never kNoTimer.
  virtual TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) = 0;
  // Forgets a timer that has not run; a no-op for kNoTimer, timers that ran
  // or were cancelled.
  virtual void Cancel(TimerId id) = 0;
};

// Wall time (absl::Now()) and the timers of one event loop.
class LoopClock final : public Clock {
 public:
  // `loop` is not owned and must outlive the clock and its timers.
  explicit LoopClock(netpoll::EventLoop* loop) : loop_(loop) {}

  absl::Time Now() override { return absl::Now(); }
  TimerId RunAfter(absl::Duration delay, absl::AnyInvocable<void()> fn) override {
    return loop_->RunAfter(delay, std::move(fn));
  }
  void Cancel(TimerId id) override {
    if (id != kNoTimer) loop_->Cancel(id);
  }

 private:
  netpoll::EventLoop* const loop_;  // not owned
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_CLOCK_H_
