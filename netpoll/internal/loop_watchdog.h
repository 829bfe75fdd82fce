// LoopWatchdog: one thread that notices event loops stuck in a blocking
// section (EventLoop::QueueMayBlock) so that they can be handed to another
// thread.
//
// A watched loop publishes a section word: odd while a thread runs a task
// that may block, a new value for every section. Every tick (1 ms for the
// process-wide instance) the watchdog reads each word; a section seen odd and
// unchanged at consecutive scans has lasted at least a tick, and the watchdog
// tells its loop (OnLongSection), which decides whether to hand itself off.
// Reading a word costs nothing to the loop; the loop pays one atomic store
// per section boundary and one load of dozing().
//
// Backing off. A scan that finds no loop in a section doubles the interval
// to the next one, up to kMaxBackoff ticks; a scan that finds one goes back
// to every tick. Under light load (a section now and then, short) the
// watchdog wakes ~60 times a second instead of 1,000 (its wake-ups were 2 %
// of a server's CPU at one call in flight); a section that blocks then is
// seen within kMaxBackoff ticks, and reported at the tick after.
//
// Dozing. A watchdog that has seen no loop in a section for kDozeAfterTicks
// ticks sleeps until a loop enters one (Wake()) or registers: an idle
// process has no 1 ms timer. The loop stores its odd word before it reads
// dozing(), and the watchdog sets dozing() before it reads the words a last
// time (both sequentially consistent), so a section cannot begin unseen.
//
//   LoopWatchdog::Default().Register(&loop);     // Watchable
//   ... in the loop: section_.store(odd); if (watchdog.dozing()) watchdog.Wake();
//   LoopWatchdog::Default().Unregister(&loop);   // before the loop is gone
//
// Thread safety: every method is safe from any thread. OnLongSection() runs
// on the watchdog's thread with its lock held: it must not call Register()
// or Unregister(). After Unregister() returns, the watchdog no longer calls
// that Watchable.
#ifndef NETPOLL_INTERNAL_LOOP_WATCHDOG_H_
#define NETPOLL_INTERNAL_LOOP_WATCHDOG_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "netpoll/mutex.h"

namespace netpoll {

// What the watchdog watches (EventLoop).
class Watchable {
 public:
  virtual ~Watchable() = default;
  // Odd while a blocking section runs; changes at every section boundary.
  virtual uint64_t section_word() const = 0;
  // `section` was seen at `ticks` + 1 consecutive scans (ticks >= 1): it has
  // lasted at least `ticks` ticks (scans one tick apart, since the first
  // sighting resets the interval) and may still be running.
  virtual void OnLongSection(uint64_t section, int ticks) = 0;
};

class LoopWatchdog {
 public:
  // Ticks without a section after which the watchdog dozes.
  static constexpr int kDozeAfterTicks = 100;
  // The longest interval between scans, in ticks.
  static constexpr int kMaxBackoff = 16;

  // The process-wide watchdog (1 ms ticks). Its thread starts at the first
  // Register() and is never joined.
  static LoopWatchdog& Default();

  explicit LoopWatchdog(absl::Duration tick);
  // Stops and joins the thread (instances other than Default()).
  ~LoopWatchdog();
  LoopWatchdog(const LoopWatchdog&) = delete;
  LoopWatchdog& operator=(const LoopWatchdog&) = delete;

  void Register(Watchable* watched);
  // Waits for a scan in progress: afterwards `watched` is never called.
  void Unregister(Watchable* watched);

  // Whether the watchdog sleeps until Wake(): a loop that began a section
  // must call Wake() then.
  bool dozing() const { return dozing_.load(std::memory_order_seq_cst); }
  void Wake();

  // Ticks whose scan has finished (tests wait on it).
  int64_t ticks() const { return ticks_.load(std::memory_order_relaxed); }

 private:
  struct Entry {
    Watchable* watched;
    uint64_t last = 0;  // the word at the previous tick
    int ticks = 0;      // consecutive ticks `last` was seen odd
  };

  void Main();
  // One tick over every entry; returns whether any was in a section.
  bool ScanLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const absl::Duration tick_;
  Mutex mu_;
  CondVar cv_;  // Wake(), Register(), stop
  std::vector<Entry> entries_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
  std::atomic<bool> dozing_{false};
  std::atomic<int64_t> ticks_{0};
};

}  // namespace netpoll

#endif  // NETPOLL_INTERNAL_LOOP_WATCHDOG_H_
