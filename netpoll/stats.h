// Transport counters: per loop, and summed per server.
//
// Counters are relaxed atomics, bumped on loop threads and readable from any
// thread through Snapshot(). A snapshot is not atomic across counters.
#ifndef NETPOLL_STATS_H_
#define NETPOLL_STATS_H_

#include <atomic>
#include <cstdint>

namespace netpoll {

struct TransportStatsSnapshot {
  int64_t connections_active = 0;
  int64_t connections_accepted = 0;
  int64_t connections_dialed = 0;
  int64_t connections_closed = 0;
  int64_t bytes_in = 0;
  int64_t bytes_out = 0;
  int64_t timeouts = 0;  // read, write and idle timeouts that closed a connection
  int64_t accept_errors = 0;
  int64_t write_calls = 0;      // writev() calls that sent bytes (coalescing shows here)
  int64_t wakeups = 0;          // eventfd wake-ups of the loops by other threads
  int64_t busy_polls = 0;       // busy-poll spins (EventLoopOptions::busy_poll)
  int64_t busy_poll_hits = 0;   // spins that found an fd ready or work queued
  int64_t may_block_tasks = 0;  // tasks run in blocking sections (EventLoop::QueueMayBlock)
  int64_t handoffs = 0;         // times a blocked section's loop moved to another thread

  TransportStatsSnapshot& operator+=(const TransportStatsSnapshot& other);
};

// Thread safety: every method is safe from any thread.
class LoopStats {
 public:
  void Add(std::atomic<int64_t>& counter, int64_t delta) {
    counter.fetch_add(delta, std::memory_order_relaxed);
  }
  TransportStatsSnapshot Snapshot() const;

  std::atomic<int64_t> connections_active{0};
  std::atomic<int64_t> connections_accepted{0};
  std::atomic<int64_t> connections_dialed{0};
  std::atomic<int64_t> connections_closed{0};
  std::atomic<int64_t> bytes_in{0};
  std::atomic<int64_t> bytes_out{0};
  std::atomic<int64_t> timeouts{0};
  std::atomic<int64_t> accept_errors{0};
  std::atomic<int64_t> write_calls{0};
  std::atomic<int64_t> wakeups{0};
  std::atomic<int64_t> busy_polls{0};
  std::atomic<int64_t> busy_poll_hits{0};
  std::atomic<int64_t> may_block_tasks{0};
  std::atomic<int64_t> handoffs{0};
};

}  // namespace netpoll

#endif  // NETPOLL_STATS_H_
