// MemoryBudget: one limit on the memory many connections hold together.
//
// A server shares one budget between all its connections. Each connection
// charges what it holds (input and output blocks, LinkBuffer::BlockBytes())
// and the layers above charge what they keep for it (decoded requests,
// decompressed payloads). The budget never refuses a charge: it is a gauge
// the holders consult before they take more.
//
//   - Reading: a connection reads only while the budget is under its limit,
//     or while it holds less than `per_connection_reserve` (so a peer sending
//     small calls is still served when others filled the budget). Denied, it
//     stops reading and waits (WaitForRoom) until the budget drains below
//     the resume mark (7/8 of the limit).
//   - Large allocations known in advance (a frame announced by its header, a
//     payload to decompress) take their bytes with TryCharge(), which fails
//     instead of going over the limit.
//
// Bound: TryCharge() never exceeds the limit. Reads exceed it by at most one
// read (Connection read granularity) per connection holding less than the
// reserve, plus the answers of calls already admitted (their requests are
// charged; an answer is usually no larger).
//
// Thread safety: every method is safe from any thread. Wake callbacks run on
// the thread whose release crossed the resume mark, outside the lock: they
// must only post work (e.g. EventLoop::RunInLoop).
#ifndef NETPOLL_MEMORY_BUDGET_H_
#define NETPOLL_MEMORY_BUDGET_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "netpoll/mutex.h"

namespace netpoll {

struct MemoryBudgetStats {
  size_t limit = 0;
  int64_t used = 0;         // bytes charged now
  int64_t peak = 0;         // highest `used` seen (sampled at TryCharge and reads)
  int64_t read_pauses = 0;  // times a connection stopped reading for the budget
  int64_t waiting = 0;      // connections waiting for room now
  int64_t refused = 0;      // TryCharge() calls that failed
};

class MemoryBudget {
 public:
  // A connection holding less than this may read even when the budget is
  // spent: one 64 KiB read, enough for small calls to go on.
  static constexpr size_t kDefaultPerConnectionReserve = 64 << 10;

  explicit MemoryBudget(size_t limit, size_t per_connection_reserve = kDefaultPerConnectionReserve);
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  // Charges (delta > 0) or releases (delta < 0) bytes. A release that brings
  // `used` below the resume mark wakes the waiters.
  void Add(int64_t delta);

  // Charges n bytes if that keeps `used` within the limit; false (nothing
  // charged) otherwise.
  bool TryCharge(size_t n);

  // Whether a holder of `held` bytes may take more by reading.
  bool MayRead(size_t held) const {
    return used() < static_cast<int64_t>(limit_) || held < per_connection_reserve_;
  }

  // Calls `wake` once, on any thread, when `used` is below the resume mark:
  // at once (on this thread) if it already is. Counts a read pause.
  void WaitForRoom(absl::AnyInvocable<void()> wake);

  int64_t used() const { return used_.load(std::memory_order_relaxed); }
  size_t limit() const { return limit_; }
  // Bytes TryCharge() could take now.
  size_t available() const {
    int64_t room = static_cast<int64_t>(limit_) - used();
    return room > 0 ? static_cast<size_t>(room) : 0;
  }
  MemoryBudgetStats Stats() const;
  // The highest `used` since the last call (or since creation); starts the
  // next period at the current value. For a releaser that asks "did a burst
  // just end?". The all-time peak of Stats() is kept apart.
  int64_t TakeRecentPeak();

 private:
  int64_t resume_mark() const { return static_cast<int64_t>(limit_ - limit_ / 8); }
  void NotePeak(int64_t value);
  void WakeWaiters();

  const size_t limit_;
  const size_t per_connection_reserve_;
  std::atomic<int64_t> used_{0};
  std::atomic<int64_t> peak_{0};
  std::atomic<int64_t> recent_peak_{0};
  std::atomic<int64_t> read_pauses_{0};
  std::atomic<int64_t> refused_{0};
  std::atomic<bool> has_waiters_{false};
  mutable Mutex mu_;
  std::vector<absl::AnyInvocable<void()>> waiters_ ABSL_GUARDED_BY(mu_);
};

// The default budget of a server on this machine: a quarter of its memory
// (the cgroup limit when one is set, else physical memory), at least 64 MiB
// and at most 1 GiB. docs/reliability.md explains the choice.
size_t DefaultMemoryBudget();

}  // namespace netpoll

#endif  // NETPOLL_MEMORY_BUDGET_H_
