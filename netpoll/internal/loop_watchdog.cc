#include "netpoll/internal/loop_watchdog.h"

#include <pthread.h>

#include <algorithm>

namespace netpoll {

LoopWatchdog& LoopWatchdog::Default() {
  // Leaked: loops may unregister during static destruction.
  static LoopWatchdog* const watchdog = new LoopWatchdog(absl::Milliseconds(1));
  return *watchdog;
}

LoopWatchdog::LoopWatchdog(absl::Duration tick) : tick_(tick) {}

LoopWatchdog::~LoopWatchdog() {
  {
    MutexLock lock(&mu_);
    stop_ = true;
  }
  cv_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void LoopWatchdog::StartLocked() {
  if (started_) return;
  started_ = true;
  thread_ = std::thread([this] { Main(); });
  pthread_setname_np(thread_.native_handle(), "netpoll-watch");
}

void LoopWatchdog::Register(Watchable* watched) {
  {
    MutexLock lock(&mu_);
    entries_.push_back(Entry{.watched = watched, .last = 0, .ticks = 0});
    StartLocked();
  }
  Wake();
}

void LoopWatchdog::Unregister(Watchable* watched) {
  MutexLock lock(&mu_);
  entries_.erase(std::remove_if(entries_.begin(), entries_.end(),
                                [watched](const Entry& e) { return e.watched == watched; }),
                 entries_.end());
}

void LoopWatchdog::Wake() {
  if (!dozing_.exchange(false, std::memory_order_seq_cst)) return;
  MutexLock lock(&mu_);
  cv_.Signal();
}

bool LoopWatchdog::ScanLocked() {
  bool any = false;
  for (Entry& e : entries_) {
    const uint64_t word = e.watched->section_word();
    const bool in_section = (word & 1) != 0;
    any = any || in_section;
    if (in_section && word == e.last) {
      ++e.ticks;
      e.watched->OnLongSection(word, e.ticks);
    } else {
      e.ticks = 0;
    }
    e.last = word;
  }
  return any;
}

void LoopWatchdog::Main() {
  int quiet = 0;  // consecutive ticks without a section
  absl::Duration interval = tick_;
  MutexLock lock(&mu_);
  while (!stop_) {
    cv_.WaitWithTimeout(&mu_, interval);
    if (stop_) break;
    quiet = ScanLocked() ? 0 : quiet + 1;
    // Back off while no section is seen; every tick while one is.
    interval = quiet == 0 ? tick_ : std::min(interval * 2, tick_ * kMaxBackoff);
    ticks_.fetch_add(1, std::memory_order_relaxed);  // after the scan: tests wait on it
    if (quiet < kDozeAfterTicks) continue;
    // Doze, unless a section began meanwhile (see the top of the header).
    dozing_.store(true, std::memory_order_seq_cst);
    bool any = false;
    for (const Entry& e : entries_) any = any || (e.watched->section_word() & 1) != 0;
    if (any) {
      dozing_.store(false, std::memory_order_seq_cst);
      quiet = 0;
      continue;
    }
    while (dozing_.load(std::memory_order_seq_cst) && !stop_) cv_.Wait(&mu_);
    quiet = 0;
    interval = tick_;
  }
}

}  // namespace netpoll
