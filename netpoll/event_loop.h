// EventLoop runs one reactor on one thread: it waits on a Poller, runs the
// handlers of ready fds, then expired timers, then queued tasks. At most one
// per thread.
//
// One turn of the loop:
//   1. poller Wait (timeout = time to the next timer; woken early by an
//      eventfd when another thread queues a task)
//   2. HandleEvents of every ready IoHandler
//   3. expired timers
//   4. queued tasks, including those queued by steps 2-3 (so writes issued
//      while handling a turn's input are flushed once, at the end of the turn)
//
// Thread safety: Run() binds the loop to the calling thread; every method
// marked "loop thread" must then be called on it (they assert). RunInLoop(),
// QueueInLoop(), RunAfter(), RunEvery(), Cancel(), Stop() and
// IsInLoopThread() are safe from any thread.
#ifndef NETPOLL_EVENT_LOOP_H_
#define NETPOLL_EVENT_LOOP_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/mutex.h"
#include "netpoll/poller.h"
#include "netpoll/stats.h"
#include "netpoll/timer_queue.h"

namespace netpoll {

struct EventLoopOptions {
  std::string name = "loop";
  PollerKind poller = PollerKind::kEpoll;
  int max_events_per_wait = 256;
};

class EventLoop {
 public:
  using Task = absl::AnyInvocable<void()>;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      const EventLoopOptions& options = EventLoopOptions());
  // Must not be running (Stop() it and let Run() return first).
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs turns until Stop(). Binds the loop to the calling thread. Runs the
  // tasks still queued at Stop() before returning.
  void Run();
  // Makes Run() return after its current turn. Any thread.
  void Stop();

  bool IsInLoopThread() const;
  // Aborts with a clear message when called off the loop thread.
  void AssertInLoopThread() const;

  // Runs `task` now when called on the loop thread, else queues it.
  void RunInLoop(Task task);
  // Queues `task` to run at the end of the current (or next) turn.
  void QueueInLoop(Task task);

  // Timers; ids are never reused. Cancel() of a timer that already ran or
  // was cancelled is a no-op. Any thread.
  TimerId RunAfter(absl::Duration delay, Task task);
  TimerId RunEvery(absl::Duration interval, Task task);
  void Cancel(TimerId id);

  // Loop thread: fd registration for IoHandlers (see Poller).
  absl::Status AddFd(int fd, uint32_t interest, IoHandler* handler);
  absl::Status ModifyFd(int fd, uint32_t interest, IoHandler* handler);
  absl::Status RemoveFd(int fd);

  // Loop thread: the loop's current time, read once per turn (cheap; use it
  // for timeouts).
  absl::Time turn_time() const { return turn_time_; }

  const std::string& name() const { return options_.name; }
  LoopStats& stats() { return stats_; }

 private:
  class Waker;
  EventLoop(const EventLoopOptions& options, std::unique_ptr<Poller> poller,
            std::unique_ptr<Waker> waker);
  void RunQueuedTasks();
  void Wake();
  TimerId ScheduleTimer(absl::Duration delay, absl::Duration interval, Task task);

  // Constant after construction.
  const EventLoopOptions options_;
  const std::unique_ptr<Poller> poller_;
  const std::unique_ptr<Waker> waker_;

  // Loop thread only.
  TimerQueue timers_;
  std::vector<Poller::Ready> ready_;
  std::vector<Task> running_tasks_;
  absl::Time turn_time_;

  std::atomic<std::thread::id> thread_id_{};
  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<TimerId> next_timer_id_{1};
  LoopStats stats_;

  Mutex mu_;
  std::vector<Task> pending_ ABSL_GUARDED_BY(mu_);
  // True while a wake-up is in flight; avoids one eventfd write per task.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace netpoll

#endif  // NETPOLL_EVENT_LOOP_H_
