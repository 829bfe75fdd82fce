// EventLoopGroup: N EventLoops, each running on its own thread.
//
// The group owns its loops and threads. Loops start in Create() and stop in
// Stop() or the destructor, which join the threads.
//
// Thread safety: every method is safe from any thread, except that Stop() and
// the destructor must not run on one of the group's own loop threads.
#ifndef NETPOLL_EVENT_LOOP_GROUP_H_
#define NETPOLL_EVENT_LOOP_GROUP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/event_loop.h"

namespace netpoll {

struct EventLoopGroupOptions {
  // 0 means one loop per core (std::thread::hardware_concurrency()).
  int num_loops = 0;
  std::string name = "netpoll";
  // Each loop's EventLoopOptions::busy_poll.
  absl::Duration busy_poll = absl::ZeroDuration();
};

class EventLoopGroup {
 public:
  static absl::StatusOr<std::unique_ptr<EventLoopGroup>> Create(
      const EventLoopGroupOptions& options = EventLoopGroupOptions());
  ~EventLoopGroup();
  EventLoopGroup(const EventLoopGroup&) = delete;
  EventLoopGroup& operator=(const EventLoopGroup&) = delete;

  // Stops every loop after its current turn and joins the threads. Idempotent.
  void Stop();

  int size() const { return static_cast<int>(loops_.size()); }
  EventLoop* loop(int i) const { return loops_[i].get(); }

  // Round-robin.
  EventLoop* Next();
  // The loop with the fewest active connections (ties: round-robin order).
  EventLoop* LeastLoaded();

  // Counters summed over all loops.
  TransportStatsSnapshot Stats() const;

 private:
  EventLoopGroup() = default;

  std::vector<std::unique_ptr<EventLoop>> loops_;  // constant after Create()
  std::vector<std::thread> threads_;
  std::atomic<uint32_t> next_{0};
  std::atomic<bool> stopped_{false};
};

}  // namespace netpoll

#endif  // NETPOLL_EVENT_LOOP_GROUP_H_
