// EventLoop runs one reactor on one thread: it waits on a Poller, runs the
// handlers of ready fds, then expired timers, then queued tasks. At most one
// per thread.
//
// One turn of the loop:
//   1. poller Wait (timeout = time to the next timer; woken early by an
//      eventfd when another thread queues a task or an earlier timer),
//      after a busy poll when the previous turn did work (see busy_poll)
//   2. HandleEvents of every ready IoHandler
//   3. timers scheduled or cancelled from other threads, then expired timers
//   3. tasks that may block (QueueMayBlock), each in a blocking section
//   4. timers scheduled or cancelled from other threads, then expired timers
//   5. queued tasks, including those queued by steps 2-4 (so writes issued
//      while handling a turn's input are flushed once, at the end of the turn);
//      steps 3 and 5 repeat (a few rounds) while tasks that may block are
//      queued
//
// Blocking sections and hand-off. A task queued with QueueMayBlock() runs
// on the loop's thread, but while it runs the loop belongs to no thread:
// IsInLoopThread() is false there, so whatever the task does to the loop
// (writes, timers) goes through the thread-safe queues. If the task blocks
// (its thread sleeps in the kernel at two watchdog scans a tick, 1 ms, apart;
// the first may come up to 16 ticks late after a quiet spell) or runs for
// kHogTicks ticks, the LoopWatchdog hands the loop to another thread: a
// parked one of this loop, else a new one (at most max_threads in all). The
// loop goes on at once on that thread; the blocked thread, when its task
// returns, parks and may take the loop again at a later hand-off. So a handler
// that blocks (a synchronous call to another service, a lock, a sleep) costs
// the other connections of its loop a millisecond or two instead of stalling
// them, and two tasks waiting for each other on one loop do not deadlock.
// This is how the Go scheduler retakes a processor from a thread blocked in a
// system call.
//
// A wake-up costs an eventfd write and a context switch, so other threads
// wake the loop only when it sleeps in Wait and cannot let the work wait: a
// loop that is awake drains queued work before it next sleeps, a timer
// cancellation never wakes it, and a timer due no earlier than the loop's own
// wake-up time waits for it (kMaxLazyTimerOps such operations do wake it).
//
// Thread safety: Run() binds the loop to the calling thread (and to the
// threads it hands off to); every method marked "loop thread" must be called
// on the thread that runs the loop now (they assert). RunInLoop(),
// QueueInLoop(), RunAfter(), RunEvery(), Cancel(), Stop() and
// IsInLoopThread() are safe from any thread.
#ifndef NETPOLL_EVENT_LOOP_H_
#define NETPOLL_EVENT_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "netpoll/busy_poll_budget.h"
#include "netpoll/internal/loop_watchdog.h"
#include "netpoll/mutex.h"
#include "netpoll/poller.h"
#include "netpoll/stats.h"
#include "netpoll/timer_queue.h"

namespace netpoll {

// A busy_poll for request/response traffic where both peers poll (what
// nprpc's servers and channels use; docs/benchmarks.md has the measurements).
inline constexpr absl::Duration kRequestResponseBusyPoll = absl::Microseconds(20);

struct EventLoopOptions {
  std::string name = "loop";
  PollerKind poller = PollerKind::kEpoll;
  int max_events_per_wait = 256;
  // Busy polling: after a turn in which an fd was ready or a task ran, poll
  // without blocking (yielding the CPU between polls) for up to this long
  // before sleeping in Wait. A message that arrives meanwhile is picked up
  // without a wake-up: on a VM, waking a sleeping vCPU costs tens of
  // microseconds, and a request/response exchange pays it at every hop.
  // Polls that find nothing are limited by a BusyPollBudget, which also
  // stretches the poll up to 3x this when the work keeps coming just after
  // it (an answer that takes 25 us over TLS). Zero (the
  // default): never poll. Off by default in the transport because polling
  // also undoes batching: with a peer that does not poll (echo_load at 16
  // connections) a polling echo server takes requests one at a time and
  // lost a quarter of its QPS.
  absl::Duration busy_poll = absl::ZeroDuration();
  // Blocking sections (QueueMayBlock): hand the loop to another thread when
  // a section blocks (see the top of this file). False: a blocked section
  // stalls the loop until it returns.
  bool hand_off_blocked_sections = true;
  // Threads that may run this loop over its life, the one that called Run()
  // included (parked and blocked ones count). At the cap a blocked section
  // stalls the loop.
  int max_threads = 64;
};

class EventLoop final : private Watchable {
 public:
  using Task = absl::AnyInvocable<void()>;

  // A section running this many watchdog ticks (ms) is handed off even when
  // its thread is not blocked (a long computation, or a thread starved of CPU).
  static constexpr int kHogTicks = 10;

  static absl::StatusOr<std::unique_ptr<EventLoop>> Create(
      const EventLoopOptions& options = EventLoopOptions());
  // Must not be running (Stop() it and let Run() return first).
  ~EventLoop() override;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs turns until Stop(). Binds the loop to the calling thread. Runs the
  // tasks still queued at Stop() before returning, and returns once every
  // thread the loop handed off to has finished (a thread blocked in a section
  // finishes when its task returns).
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
  // Loop thread: queues `task`, which may block, to run in a blocking section
  // later in this turn (see the top of this file), in the order queued. If
  // the loop is handed off while it runs, `handed_off` (when not null) is set
  // to true by the watchdog's thread; it must stay valid until Run()
  // returns.
  void QueueMayBlock(Task task, std::atomic<bool>* handed_off = nullptr);

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
  // Threads the current (or last) Run() has used: 1 plus the threads hand-offs
  // started. Any thread.
  int thread_count() {
    MutexLock lock(&handoff_mu_);
    return threads_;
  }
  // Threads parked, waiting to be handed the loop. Any thread.
  int parked_threads() {
    MutexLock lock(&handoff_mu_);
    return parked_;
  }
  LoopStats& stats() { return stats_; }

  // Any thread: whether the loop sleeps (or is about to) in its poller wait,
  // so that work from other threads must wake it. A snapshot, for tests and
  // diagnostics: a test waits for it before checking what wakes the loop.
  bool IsSleeping() {
    MutexLock lock(&mu_);
    return sleeping_;
  }

 private:
  class Waker;
  struct MayBlockTask {
    Task task;
    std::atomic<bool>* handed_off;
  };
  // Owner: runs turns until Stop() (returns true once the loop is finished)
  // or until the loop is handed off during a section (returns false; the
  // caller must not touch the loop's state any more).
  bool RunTurns();
  // Owner: the final tasks after Stop(); wakes the parked threads.
  void Finish();
  // Runs the queued tasks that may block; false when the loop was handed off.
  bool RunMayBlockTasks();
  // A parked thread: waits until it is handed the loop (true) or the loop
  // finished (false).
  bool WaitForHandOff();
  // A thread started by a hand-off.
  void HelperMain();
  // Watchable (the watchdog's thread).
  uint64_t section_word() const override { return section_.load(std::memory_order_acquire); }
  void OnLongSection(uint64_t section, int ticks) override;
  // Watchdog thread: moves the loop from the thread running `section` to
  // another, if the section still runs and max_threads allows.
  void HandOff(uint64_t section);

  EventLoop(const EventLoopOptions& options, std::unique_ptr<Poller> poller,
            std::unique_ptr<Waker> waker);
  // A timer scheduled (task set) or cancelled (task empty) off the loop.
  struct TimerOp {
    TimerId id;
    absl::Time when;
    absl::Duration interval;
    Task task;
  };
  // Timer operations queued without a wake-up wake the loop at this many.
  static constexpr size_t kMaxLazyTimerOps = 1024;

  // Returns whether any task ran.
  bool RunQueuedTasks();
  // Loop thread: the poller Wait for up to `wait`, counted as sleeping (so
  // that other threads wake the loop) unless work is already queued.
  absl::StatusOr<int> SleepingWait(absl::Duration wait);
  // Loop thread: polls without blocking for up to `poll` until an fd is
  // ready, work is queued or Stop(); fills ready_ and returns how many
  // entries are ready. `work`: whether an fd was ready or work was queued.
  int BusyPoll(absl::Duration poll, bool& work);
  void Wake();
  void SendWakeup();  // the eventfd write, counted in stats().wakeups
  // Any thread: queues `op`; wakes the loop only when it sleeps past the
  // op's due time or too many ops wait.
  void PostTimerOp(TimerOp op);
  // Loop thread: applies the queued timer operations in order.
  void ApplyTimerOps();
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
  BusyPollBudget busy_poll_budget_;  // for options_.busy_poll

  std::deque<MayBlockTask> may_block_;
  bool registered_ = false;  // with watchdog_ (at the first QueueMayBlock)

  // The thread running the loop, unset while a blocking section runs.
  std::atomic<std::thread::id> thread_id_{};
  // (sequence << 1) | in_section: see LoopWatchdog. Written by the owner at
  // section boundaries; the watchdog's hand-off CAS ends a section early.
  std::atomic<uint64_t> section_{0};
  std::atomic<std::atomic<bool>*> section_flag_{nullptr};  // the section's handed_off
  std::atomic<int> owner_tid_{0};                          // kernel thread id of the owner
  LoopWatchdog* const watchdog_;
  Mutex handoff_mu_;
  CondVar handoff_cv_;  // a hand-off or the loop finished
  bool handoff_pending_ ABSL_GUARDED_BY(handoff_mu_) = false;
  bool finished_ ABSL_GUARDED_BY(handoff_mu_) = false;
  int parked_ ABSL_GUARDED_BY(handoff_mu_) = 0;   // threads in WaitForHandOff
  int threads_ ABSL_GUARDED_BY(handoff_mu_) = 0;  // threads of this Run()
  std::vector<std::thread> helpers_ ABSL_GUARDED_BY(handoff_mu_);

  std::atomic<bool> stop_{false};
  std::atomic<bool> running_{false};
  std::atomic<TimerId> next_timer_id_{1};
  LoopStats stats_;

  Mutex mu_;
  std::vector<Task> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<TimerOp> timer_ops_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> has_timer_ops_{false};  // !timer_ops_.empty(), read unlocked
  // True while a wake-up is in flight; avoids one eventfd write per task.
  bool wake_pending_ ABSL_GUARDED_BY(mu_) = false;
  // True while the loop thread is (about to be) blocked in Wait with a
  // non-zero timeout; it wakes by itself at sleep_until_ (MonotonicNow()).
  bool sleeping_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time sleep_until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

}  // namespace netpoll

#endif  // NETPOLL_EVENT_LOOP_H_
