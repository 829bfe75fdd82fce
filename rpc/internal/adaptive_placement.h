// AdaptivePlacement: where one method's handlers run under
// ServerOptions::HandlerThreads::kAdaptive, the default for handlers that
// may block: on the I/O loop that read the call, in a blocking section
// (netpoll::EventLoop::QueueMayBlock), or on the worker pool.
//
// Running on the loop saves the hand-off (a queue, a wake-up, a cache-cold
// thread, and the answer crossing back), the largest cost of a small call.
// The pool is for handlers that would hold the loop's other connections up:
//   - A method starts on the loop.
//   - It moves to the pool when one of its calls made the loop hand off
//     (the handler blocked: the section's `handed_off` flag, handoff_flag()),
//     or when its handlers' average run time (a moving average over the last
//     ~8 samples; the server times one call in 8, in CPU time on the loop so
//     that preemption does not count) exceeds kMaxLoopRunTime: beyond it the
//     hand-off costs less than the wait it saves the loop's other
//     connections. A sample counts for at most 4x kMaxLoopRunTime, so one
//     outlier does not move a method.
//   - It may come back after a probation that doubles at every move (1 s,
//     2 s, ... up to 64 s), once its average run time on the pool is below
//     half of kMaxLoopRunTime. The pool times in wall time: a handler that
//     blocks shows its blocking in that average, and stays on the pool.
//
//   if (placement.OnLoop()) loop->QueueMayBlock(run, placement.handoff_flag());
//   else pool->TrySubmit(run);
//   ... run: t0; handler(); placement.RecordRun(now - t0, on_loop);
//
// Thread safety: every method is safe from any thread. The state is relaxed
// atomics: a stale read only places one call differently.
#ifndef RPC_INTERNAL_ADAPTIVE_PLACEMENT_H_
#define RPC_INTERNAL_ADAPTIVE_PLACEMENT_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace nprpc {

class AdaptivePlacement {
 public:
  static constexpr absl::Duration kMaxLoopRunTime = absl::Microseconds(50);
  static constexpr absl::Duration kFirstProbation = absl::Seconds(1);
  static constexpr int kMaxProbationDoublings = 6;  // 64 s
  // A run-time sample counts for at most this many kMaxLoopRunTime: it
  // takes at least three long samples in a row to move a method.
  static constexpr int64_t kMaxSampleFactor = 4;

  // Whether the next call runs on the loop. `now_ns`: absl::GetCurrentTimeNanos().
  bool OnLoop(int64_t now_ns);
  bool OnLoop() { return OnLoop(absl::GetCurrentTimeNanos()); }
  // A handler ran for `run_ns` (until Call() returned), on the loop or not.
  void RecordRun(int64_t run_ns, bool on_loop, int64_t now_ns);
  // Set by the loop's watchdog when a call of this method blocked its loop.
  std::atomic<bool>* handoff_flag() { return &handed_off_; }

  // Moves to the pool so far; whether the method is on the loop now.
  int64_t moves_to_pool() const { return moves_.load(std::memory_order_relaxed); }
  bool on_loop_now() const { return pool_until_ns_.load(std::memory_order_relaxed) == 0; }
  // The moving average of the handlers' run time.
  absl::Duration average_run_time() const {
    return absl::Nanoseconds(average_ns_.load(std::memory_order_relaxed));
  }

 private:
  void MoveToPool(int64_t now_ns);
  // A hand-off was flagged: moves to the pool (once) and returns true.
  bool TakeHandOff(int64_t now_ns);

  std::atomic<bool> handed_off_{false};
  std::atomic<int64_t> average_ns_{0};
  std::atomic<int64_t> pool_until_ns_{0};  // 0: on the loop
  std::atomic<int> doublings_{0};
  std::atomic<int64_t> moves_{0};
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_ADAPTIVE_PLACEMENT_H_
