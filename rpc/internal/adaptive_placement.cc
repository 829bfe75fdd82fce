#include "rpc/internal/adaptive_placement.h"

#include <algorithm>

namespace nprpc {

bool AdaptivePlacement::TakeHandOff(int64_t now_ns) {
  if (!handed_off_.load(std::memory_order_relaxed) ||
      !handed_off_.exchange(false, std::memory_order_acq_rel)) {
    return false;
  }
  MoveToPool(now_ns);
  return true;
}

bool AdaptivePlacement::OnLoop(int64_t now_ns) {
  TakeHandOff(now_ns);
  const int64_t until = pool_until_ns_.load(std::memory_order_relaxed);
  if (until == 0) return true;
  if (now_ns < until || average_ns_.load(std::memory_order_relaxed) >=
                            absl::ToInt64Nanoseconds(kMaxLoopRunTime) / 2) {
    return false;
  }
  pool_until_ns_.store(0, std::memory_order_relaxed);  // probation over
  return true;
}

void AdaptivePlacement::RecordRun(int64_t run_ns, bool on_loop, int64_t now_ns) {
  // average += (run - average) / 8; concurrent updates may lose one sample.
  // A sample counts for at most kMaxSampleFactor x kMaxLoopRunTime, so one
  // outlier (a page-fault storm, a cold cache) cannot move the method alone.
  const int64_t sample =
      std::min(run_ns, kMaxSampleFactor * absl::ToInt64Nanoseconds(kMaxLoopRunTime));
  const int64_t average = average_ns_.load(std::memory_order_relaxed);
  const int64_t updated = average + (sample - average) / 8;
  average_ns_.store(updated, std::memory_order_relaxed);
  // A call that blocked its loop moves the method once, for both reasons.
  if (TakeHandOff(now_ns)) return;
  if (on_loop && updated > absl::ToInt64Nanoseconds(kMaxLoopRunTime) &&
      pool_until_ns_.load(std::memory_order_relaxed) == 0) {
    MoveToPool(now_ns);
  }
}

void AdaptivePlacement::MoveToPool(int64_t now_ns) {
  const int doublings =
      std::min(doublings_.fetch_add(1, std::memory_order_relaxed), kMaxProbationDoublings);
  const int64_t probation = absl::ToInt64Nanoseconds(kFirstProbation) << doublings;
  pool_until_ns_.store(now_ns + probation, std::memory_order_relaxed);
  moves_.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace nprpc
