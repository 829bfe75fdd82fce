#include "netpoll/event_loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "netpoll/link_buffer.h"
#include "netpoll/logging.h"

namespace netpoll {
namespace {
thread_local EventLoop* t_loop_in_this_thread = nullptr;

// The state letter of /proc/self/task/<tid>/stat ('R' running or runnable,
// 'S' sleeping, 'D' in uninterruptible wait, ...), or '?' when unreadable.
char ThreadState(int tid) {
  char path[64];
  snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return '?';
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return '?';
  buf[n] = '\0';
  // "tid (comm) S ...": comm may hold spaces and parentheses.
  const char* paren = strrchr(buf, ')');
  if (paren == nullptr || paren[1] != ' ' || paren[2] == '\0') return '?';
  return paren[2];
}
}  // namespace

// The eventfd that wakes a loop blocked in Wait().
class EventLoop::Waker : public IoHandler {
 public:
  explicit Waker(int fd) : fd_(fd) {}
  ~Waker() override { ::close(fd_); }
  int fd() const { return fd_; }
  void Wake() {
    uint64_t one = 1;
    ssize_t n = ::write(fd_, &one, sizeof(one));
    (void)n;  // EAGAIN means the counter is already non-zero: still woken
  }
  void HandleEvents(uint32_t) override {
    uint64_t value;
    while (::read(fd_, &value, sizeof(value)) > 0) {
    }
  }

 private:
  const int fd_;  // owned
};

absl::StatusOr<std::unique_ptr<EventLoop>> EventLoop::Create(const EventLoopOptions& options) {
  auto poller = Poller::Create(options.poller);
  if (!poller.ok()) return poller.status();
  int fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  auto waker = std::make_unique<Waker>(fd);
  if (absl::Status s = (*poller)->Add(fd, kPollReadable, waker.get()); !s.ok()) return s;
  return std::unique_ptr<EventLoop>(new EventLoop(options, std::move(*poller), std::move(waker)));
}

EventLoop::EventLoop(const EventLoopOptions& options, std::unique_ptr<Poller> poller,
                     std::unique_ptr<Waker> waker)
    : options_(options),
      poller_(std::move(poller)),
      waker_(std::move(waker)),
      ready_(options.max_events_per_wait > 0 ? options.max_events_per_wait : 256),
      turn_time_(MonotonicNow()),
      busy_poll_budget_(options.busy_poll),
      watchdog_(&LoopWatchdog::Default()) {}

EventLoop::~EventLoop() {
  NP_CHECK(!running_.load()) << "EventLoop " << options_.name << " destroyed while running";
  (void)poller_->Remove(waker_->fd());
}

bool EventLoop::IsInLoopThread() const { return thread_id_.load() == std::this_thread::get_id(); }

void EventLoop::AssertInLoopThread() const {
  NP_CHECK(IsInLoopThread()) << "EventLoop " << options_.name
                             << ": loop-thread method called from another thread";
}

void EventLoop::Run() {
  NP_CHECK(t_loop_in_this_thread == nullptr) << "two EventLoops on one thread";
  NP_CHECK(!running_.exchange(true)) << "EventLoop " << options_.name << " already running";
  t_loop_in_this_thread = this;
  {
    MutexLock lock(&handoff_mu_);
    threads_ = 1;
    finished_ = false;
  }
  // Owner until handed off; then parked until handed the loop again.
  while (!RunTurns() && WaitForHandOff()) {
  }
  std::vector<std::thread> helpers;
  {
    MutexLock lock(&handoff_mu_);
    helpers.swap(helpers_);  // none is added once finished_
  }
  for (std::thread& t : helpers) t.join();
  // No thread runs the loop any more: registered_ is read after the joins.
  if (registered_) {
    watchdog_->Unregister(this);
    registered_ = false;
  }
  stop_.store(false);
  t_loop_in_this_thread = nullptr;
  running_.store(false);
}

void EventLoop::HelperMain() {
  t_loop_in_this_thread = this;
  while (WaitForHandOff() && !RunTurns()) {
  }
  t_loop_in_this_thread = nullptr;
}

bool EventLoop::WaitForHandOff() {
  LinkBuffer::TrimThreadCache();  // this thread may park for long
  MutexLock lock(&handoff_mu_);
  ++parked_;
  while (!handoff_pending_ && !finished_) handoff_cv_.Wait(&handoff_mu_);
  --parked_;
  if (!handoff_pending_) return false;
  handoff_pending_ = false;
  return true;
}

bool EventLoop::RunTurns() {
  thread_id_.store(std::this_thread::get_id());
  owner_tid_.store(static_cast<int>(::gettid()), std::memory_order_relaxed);
  // The previous turn had a ready fd or ran a task: work may follow soon
  // (a reply to what it sent, the next task from a worker thread).
  bool had_work = false;
  while (!stop_.load(std::memory_order_acquire)) {
    turn_time_ = MonotonicNow();
    if (has_timer_ops_.load(std::memory_order_acquire)) ApplyTimerOps();
    absl::Duration wait =
        may_block_.empty() ? timers_.TimeUntilNext(turn_time_) : absl::ZeroDuration();
    absl::StatusOr<int> n = 0;
    // A poll that found nothing: when the sleep after it ends with work, the
    // gap teaches the budget how long polls should last.
    absl::Time missed_poll_start = absl::InfiniteFuture();
    if (had_work && wait > absl::ZeroDuration() && busy_poll_budget_.MayPoll(turn_time_)) {
      const absl::Time poll_start = turn_time_;
      bool found = false;
      n = BusyPoll(std::min(wait, busy_poll_budget_.window()), found);
      turn_time_ = MonotonicNow();
      wait = timers_.TimeUntilNext(turn_time_);
      if (found) {
        busy_poll_budget_.FoundAfter(turn_time_ - poll_start);
      } else {
        missed_poll_start = poll_start;
      }
    }
    if (*n == 0) {
      n = SleepingWait(wait);
      if (n.ok() && *n > 0 && missed_poll_start != absl::InfiniteFuture()) {
        busy_poll_budget_.MissedBy(turn_time_ - missed_poll_start);
      }
    }
    if (!n.ok()) {
      NP_LOG(ERROR) << options_.name << ": " << n.status();
      had_work = false;
      continue;
    }
    had_work = *n > 0;
    for (int i = 0; i < *n; ++i) ready_[i].handler->HandleEvents(ready_[i].events);
    if (!may_block_.empty()) {
      had_work = true;
      if (!RunMayBlockTasks()) return false;
    }
    // Cancellations queued before now take effect before timers fire.
    if (has_timer_ops_.load(std::memory_order_acquire)) ApplyTimerOps();
    timers_.RunExpired(turn_time_);
    if (RunQueuedTasks()) had_work = true;
    // Tasks (answers flushed, calls resumed) may have queued more tasks that
    // may block: a few more rounds in this turn.
    for (int round = 0; round < 4 && !may_block_.empty(); ++round) {
      if (!RunMayBlockTasks()) return false;
      RunQueuedTasks();
    }
  }
  Finish();
  return true;
}

void EventLoop::Finish() {
  // Tasks queued before Stop() still run (they may release resources); so do
  // the tasks that may block, outside any section (nothing is left to hand
  // the loop to).
  while (!may_block_.empty()) {
    MayBlockTask t = std::move(may_block_.front());
    may_block_.pop_front();
    t.task();
  }
  RunQueuedTasks();
  thread_id_.store(std::thread::id());
  MutexLock lock(&handoff_mu_);
  finished_ = true;
  handoff_cv_.SignalAll();
}

void EventLoop::QueueMayBlock(Task task, std::atomic<bool>* handed_off) {
  AssertInLoopThread();
  // Watched from the first section on: loops that never run one (clients)
  // cost the watchdog nothing, and a process without sections has no
  // watchdog thread.
  if (!registered_ && options_.hand_off_blocked_sections) {
    registered_ = true;
    watchdog_->Register(this);
  }
  may_block_.push_back(MayBlockTask{std::move(task), handed_off});
}

bool EventLoop::RunMayBlockTasks() {
  const std::thread::id self = std::this_thread::get_id();
  while (!may_block_.empty()) {
    MayBlockTask t = std::move(may_block_.front());
    may_block_.pop_front();
    stats_.Add(stats_.may_block_tasks, 1);
    // Only this thread writes section_ while it is even.
    const uint64_t even = section_.load(std::memory_order_relaxed);
    section_flag_.store(t.handed_off, std::memory_order_relaxed);
    thread_id_.store(std::thread::id(), std::memory_order_release);
    section_.store(even + 1, std::memory_order_seq_cst);
    if (watchdog_->dozing()) watchdog_->Wake();
    t.task();
    t.task = nullptr;  // its captures go while this thread may still own the loop
    uint64_t expected = even + 1;
    if (!section_.compare_exchange_strong(expected, even + 2, std::memory_order_acq_rel)) {
      return false;  // handed off: another thread runs the loop now
    }
    thread_id_.store(self, std::memory_order_release);
  }
  return true;
}

void EventLoop::OnLongSection(uint64_t section, int ticks) {
  if (ticks < kHogTicks) {
    // Hand off only a thread that sleeps in the kernel; one that runs (or
    // waits for a CPU) gets kHogTicks.
    const char state = ThreadState(owner_tid_.load(std::memory_order_relaxed));
    if (state != 'S' && state != 'D') return;
  }
  HandOff(section);
}

void EventLoop::HandOff(uint64_t section) {
  std::atomic<bool>* flag = section_flag_.load(std::memory_order_relaxed);
  MutexLock lock(&handoff_mu_);
  if (finished_) return;
  const bool spawn = parked_ == 0;
  if (spawn && threads_ >= options_.max_threads) return;
  // Ends the section for its thread: its CAS will fail.
  uint64_t expected = section;
  if (!section_.compare_exchange_strong(expected, section + 1, std::memory_order_acq_rel)) return;
  stats_.Add(stats_.handoffs, 1);
  if (flag != nullptr) flag->store(true, std::memory_order_release);
  handoff_pending_ = true;
  if (!spawn) {
    handoff_cv_.Signal();
    return;
  }
  ++threads_;
  helpers_.emplace_back([this] { HelperMain(); });
  std::string name = absl::StrCat(options_.name, "+", threads_ - 1).substr(0, 15);
  pthread_setname_np(helpers_.back().native_handle(), name.c_str());
}

absl::StatusOr<int> EventLoop::SleepingWait(absl::Duration wait) {
  int timeout_ms = -1;
  if (wait != absl::InfiniteDuration()) {
    timeout_ms = static_cast<int>(std::ceil(absl::ToDoubleMilliseconds(wait)));
  }
  bool sleeping;
  {
    MutexLock lock(&mu_);
    // Work queued since it was last drained (no wake-up was sent for it).
    if (!pending_.empty() || !timer_ops_.empty()) timeout_ms = 0;
    sleeping = sleeping_ = timeout_ms != 0;
    sleep_until_ =
        timeout_ms < 0 ? absl::InfiniteFuture() : turn_time_ + absl::Milliseconds(timeout_ms);
  }
  absl::StatusOr<int> n = poller_->Wait(absl::MakeSpan(ready_), timeout_ms);
  turn_time_ = MonotonicNow();
  if (sleeping) {
    MutexLock lock(&mu_);
    sleeping_ = false;
  }
  return n;
}

int EventLoop::BusyPoll(absl::Duration poll, bool& work) {
  // sleeping_ stays false: other threads queue work without waking the loop,
  // and the loop finds it here.
  stats_.Add(stats_.busy_polls, 1);
  int found = 0;
  work = false;  // an fd is ready or work is queued
  busy_poll_budget_.Poll(turn_time_, poll, [&] {
    absl::StatusOr<int> n = poller_->Wait(absl::MakeSpan(ready_), 0);
    if (n.ok() && *n > 0) found = *n;
    work = found > 0 || has_timer_ops_.load(std::memory_order_acquire);
    if (!work) {
      MutexLock lock(&mu_);
      work = !pending_.empty();
    }
    return work || stop_.load(std::memory_order_acquire);
  });
  if (work) stats_.Add(stats_.busy_poll_hits, 1);
  return found;
}

void EventLoop::Stop() {
  stop_.store(true, std::memory_order_release);
  if (!IsInLoopThread()) Wake();
}

void EventLoop::Wake() {
  {
    MutexLock lock(&mu_);
    if (wake_pending_) return;
    wake_pending_ = true;
  }
  SendWakeup();
}

void EventLoop::RunInLoop(Task task) {
  if (IsInLoopThread()) {
    task();
  } else {
    QueueInLoop(std::move(task));
  }
}

void EventLoop::SendWakeup() {
  stats_.Add(stats_.wakeups, 1);
  waker_->Wake();
}

void EventLoop::QueueInLoop(Task task) {
  bool wake;
  {
    MutexLock lock(&mu_);
    pending_.push_back(std::move(task));
    // A loop that is not sleeping (this thread among them) drains pending_
    // before it next sleeps: Run() checks pending_ under mu_ before Wait.
    wake = sleeping_ && !wake_pending_;
    if (wake) wake_pending_ = true;
  }
  if (wake) SendWakeup();
}

bool EventLoop::RunQueuedTasks() {
  // Tasks may queue more tasks; run those in the same turn too, but bound the
  // rounds so a task that always re-queues itself cannot starve I/O.
  bool ran = false;
  for (int round = 0; round < 4; ++round) {
    {
      MutexLock lock(&mu_);
      wake_pending_ = false;
      if (pending_.empty()) return ran;
      running_tasks_.swap(pending_);
    }
    for (Task& task : running_tasks_) task();
    running_tasks_.clear();
    ran = true;
  }
  return ran;
}

TimerId EventLoop::ScheduleTimer(absl::Duration delay, absl::Duration interval, Task task) {
  TimerId id = next_timer_id_.fetch_add(1, std::memory_order_relaxed);
  const absl::Time when = MonotonicNow() + delay;
  if (IsInLoopThread()) {
    timers_.Schedule(id, when, interval, std::move(task));
  } else {
    PostTimerOp(TimerOp{id, when, interval, std::move(task)});
  }
  return id;
}

void EventLoop::PostTimerOp(TimerOp op) {
  bool wake;
  {
    MutexLock lock(&mu_);
    const absl::Time run_by = op.task ? op.when : absl::InfiniteFuture();
    timer_ops_.push_back(std::move(op));
    has_timer_ops_.store(true, std::memory_order_release);
    wake = sleeping_ && !wake_pending_ &&
           (run_by < sleep_until_ || timer_ops_.size() >= kMaxLazyTimerOps);
    if (wake) wake_pending_ = true;
  }
  if (wake) SendWakeup();
}

void EventLoop::ApplyTimerOps() {
  // A local list: erasing a timer destroys its task, whose destructor may
  // post or cancel timers and so re-enter here.
  std::vector<TimerOp> ops;
  {
    MutexLock lock(&mu_);
    ops.swap(timer_ops_);
    has_timer_ops_.store(false, std::memory_order_release);
  }
  for (TimerOp& op : ops) {
    if (op.task) {
      timers_.Schedule(op.id, op.when, op.interval, std::move(op.task));
    } else {
      timers_.Cancel(op.id);
    }
  }
}

TimerId EventLoop::RunAfter(absl::Duration delay, Task task) {
  return ScheduleTimer(delay, absl::ZeroDuration(), std::move(task));
}

TimerId EventLoop::RunEvery(absl::Duration interval, Task task) {
  NP_CHECK(interval > absl::ZeroDuration()) << "RunEvery needs a positive interval";
  return ScheduleTimer(interval, interval, std::move(task));
}

void EventLoop::Cancel(TimerId id) {
  if (id == kInvalidTimerId) return;
  if (IsInLoopThread()) {
    // The timer may still be queued by another thread: apply that first.
    if (has_timer_ops_.load(std::memory_order_acquire)) ApplyTimerOps();
    timers_.Cancel(id);
  } else {
    PostTimerOp(TimerOp{id, absl::InfinitePast(), absl::ZeroDuration(), nullptr});
  }
}

absl::Status EventLoop::AddFd(int fd, uint32_t interest, IoHandler* handler) {
  AssertInLoopThread();
  return poller_->Add(fd, interest, handler);
}

absl::Status EventLoop::ModifyFd(int fd, uint32_t interest, IoHandler* handler) {
  AssertInLoopThread();
  return poller_->Modify(fd, interest, handler);
}

absl::Status EventLoop::RemoveFd(int fd) {
  AssertInLoopThread();
  return poller_->Remove(fd);
}

}  // namespace netpoll
