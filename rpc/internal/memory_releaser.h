// MemoryReleaser: gives a server's memory back to the system after a burst.
//
// A server that survives a burst of large calls (or an attack) but keeps its
// peak resident is killed by the next one. Freed LinkBuffer blocks sit in
// per-thread caches (up to 6 MiB per thread), and glibc keeps freed heap
// pages mapped. Every `interval`, on one I/O loop, the releaser compares the
// memory budget's recent peak with what it holds now; when a burst ended
// (the peak was at least `burst_bytes` and at most a quarter of it is still
// held) it trims the block cache of every I/O loop (each on its own thread)
// and then returns the heap's free pages with malloc_trim(0), at once and at
// the next two checks (the worker threads trim their own caches when they go
// idle, WorkerPoolOptions::on_idle, which takes a second). One trim of a
// 100-170 MiB heap takes ~6 ms; the checks cost nothing otherwise.
//
// glibc needs one more thing, done once per process by Start(): fixed
// M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (1 MiB). By default both adapt
// upwards after a large block is freed (to 32 MiB and 64 MiB), so later large
// messages land in the heaps of the threads' arenas, and the free top of a
// thread's heap is never returned: malloc_trim() does not touch it, and free()
// trims it only beyond the (grown) trim threshold. Fixed thresholds keep
// blocks of 1 MiB or more in their own mappings (unmapped when freed) and
// trim heap tops above 1 MiB at once.
//
// docs/reliability.md has the measurements behind the choice of glibc with
// malloc_trim over jemalloc and mimalloc.
//
// Thread safety: Start() and Stop() from the thread that owns the server
// (Start() before, Stop() after the loops run); the timer work runs on loop 0.
#ifndef RPC_INTERNAL_MEMORY_RELEASER_H_
#define RPC_INTERNAL_MEMORY_RELEASER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "netpoll/event_loop.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/memory_budget.h"

namespace nprpc {

struct MemoryReleaserOptions {
  absl::Duration interval = absl::Seconds(1);
  // A burst: the budget's peak since the last check at least this high, and
  // now at most a quarter of it.
  int64_t burst_bytes = int64_t{4} << 20;
  // Runs (on loop 0) at each release; may be empty.
  std::function<void()> on_release;
};

class MemoryReleaser {
 public:
  // `group` and `budget` outlive Stop().
  MemoryReleaser(netpoll::EventLoopGroup* group, std::shared_ptr<netpoll::MemoryBudget> budget,
                 MemoryReleaserOptions options = {});
  ~MemoryReleaser();
  MemoryReleaser(const MemoryReleaser&) = delete;
  MemoryReleaser& operator=(const MemoryReleaser&) = delete;

  void Start();
  // Cancels the timer; waits for a check in progress.
  void Stop();

  // Releases done (bursts seen).
  int64_t releases() const { return releases_.load(std::memory_order_relaxed); }

  // Trims the calling thread's block cache and returns free heap pages to
  // the system (malloc_trim(0)). Any thread.
  static void ReleaseNow();
  // The glibc thresholds above; once per process (later calls do nothing).
  static void TuneAllocator();

 private:
  void Check();  // loop 0

  netpoll::EventLoopGroup* const group_;
  const std::shared_ptr<netpoll::MemoryBudget> budget_;
  const MemoryReleaserOptions options_;
  bool running_ = false;  // owner thread: between Start() and Stop()
  netpoll::TimerId timer_ = netpoll::kInvalidTimerId;
  int trims_left_ = 0;  // loop 0: malloc_trims still due after a release
  std::atomic<int64_t> releases_{0};
};

}  // namespace nprpc

#endif  // RPC_INTERNAL_MEMORY_RELEASER_H_
