#include "netpoll/memory_budget.h"

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <string>
#include <utility>

#include "absl/strings/numbers.h"

namespace netpoll {

MemoryBudget::MemoryBudget(size_t limit, size_t per_connection_reserve)
    : limit_(limit), per_connection_reserve_(per_connection_reserve) {}

void MemoryBudget::Add(int64_t delta) {
  const int64_t after = used_.fetch_add(delta, std::memory_order_relaxed) + delta;
  if (delta > 0) {
    NotePeak(after);
  } else if (after < resume_mark() && has_waiters_.load(std::memory_order_acquire)) {
    WakeWaiters();
  }
}

bool MemoryBudget::TryCharge(size_t n) {
  int64_t used = used_.load(std::memory_order_relaxed);
  do {
    if (used + static_cast<int64_t>(n) > static_cast<int64_t>(limit_)) {
      refused_.fetch_add(1, std::memory_order_relaxed);
      return false;
    }
  } while (!used_.compare_exchange_weak(used, used + static_cast<int64_t>(n),
                                        std::memory_order_relaxed));
  NotePeak(used + static_cast<int64_t>(n));
  return true;
}

void MemoryBudget::NotePeak(int64_t value) {
  for (std::atomic<int64_t>* mark : {&peak_, &recent_peak_}) {
    int64_t peak = mark->load(std::memory_order_relaxed);
    while (value > peak && !mark->compare_exchange_weak(peak, value, std::memory_order_relaxed)) {
    }
  }
}

int64_t MemoryBudget::TakeRecentPeak() {
  return recent_peak_.exchange(used(), std::memory_order_relaxed);
}

void MemoryBudget::WaitForRoom(absl::AnyInvocable<void()> wake) {
  read_pauses_.fetch_add(1, std::memory_order_relaxed);
  {
    MutexLock lock(&mu_);
    waiters_.push_back(std::move(wake));
    has_waiters_.store(true, std::memory_order_release);
  }
  // A release between the caller's check and the push above saw no waiter:
  // check again now that we are one.
  if (used() < resume_mark()) WakeWaiters();
}

void MemoryBudget::WakeWaiters() {
  std::vector<absl::AnyInvocable<void()>> waiters;
  {
    MutexLock lock(&mu_);
    waiters.swap(waiters_);
    has_waiters_.store(false, std::memory_order_release);
  }
  for (auto& wake : waiters) wake();
}

MemoryBudgetStats MemoryBudget::Stats() const {
  MemoryBudgetStats stats;
  stats.limit = limit_;
  stats.used = used();
  stats.peak = peak_.load(std::memory_order_relaxed);
  stats.read_pauses = read_pauses_.load(std::memory_order_relaxed);
  stats.refused = refused_.load(std::memory_order_relaxed);
  MutexLock lock(&mu_);
  stats.waiting = static_cast<int64_t>(waiters_.size());
  return stats;
}

namespace {

// The cgroup v2 (memory.max) or v1 (memory.limit_in_bytes) limit of this
// process, or 0 when there is none.
size_t CgroupMemoryLimit() {
  for (const char* path :
       {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream file(path);
    std::string value;
    if (!(file >> value) || value == "max") continue;
    uint64_t limit = 0;
    // v1 reports "no limit" as a huge number.
    if (absl::SimpleAtoi(value, &limit) && limit > 0 && limit < (uint64_t{1} << 50)) {
      return static_cast<size_t>(limit);
    }
  }
  return 0;
}

}  // namespace

size_t DefaultMemoryBudget() {
  size_t memory = CgroupMemoryLimit();
  if (memory == 0) {
    const int64_t pages = sysconf(_SC_PHYS_PAGES);
    const int64_t page_size = sysconf(_SC_PAGESIZE);
    if (pages > 0 && page_size > 0) {
      memory = static_cast<size_t>(pages) * static_cast<size_t>(page_size);
    }
  }
  constexpr size_t kMin = size_t{64} << 20;
  constexpr size_t kMax = size_t{1} << 30;
  if (memory == 0) return kMax;
  return std::clamp(memory / 4, kMin, kMax);
}

}  // namespace netpoll
