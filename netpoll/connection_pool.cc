#include "netpoll/connection_pool.h"

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "netpoll/dialer.h"
#include "netpoll/logging.h"
#include "netpoll/mutex.h"
#include "netpoll/timer_queue.h"

namespace netpoll {
namespace connection_pool_internal {
namespace {

// Work decided under the pool's lock and done after releasing it (closing
// connections, starting dials, running user callbacks).
using Actions = std::vector<absl::AnyInvocable<void()>>;
using AcquireCallback = ConnectionPool::AcquireCallback;
using Lease = ConnectionPool::Lease;

void RunActions(Actions& actions) {
  for (auto& action : actions) action();
  actions.clear();
}

enum class EntryState {
  kArriving,  // dialed; still counted in `dialing` until OnDialDone places it
  kLeased,    // held by a Lease, or being handed to a waiter
  kIdle,      // in its address's idle list
  kClosing,   // the pool closed it; its close callback has not run yet
  kClosed,    // its close callback ran; no longer counted
};

struct Waiter {
  enum class State { kQueued, kHandoff, kDone };
  ConnectionPool::AcquireCallback done;
  absl::Time deadline;
  State state = State::kQueued;
  EventLoop* timer_loop = nullptr;
  TimerId timer = kInvalidTimerId;
  bool timer_fired = false;
};

}  // namespace

struct AddressState;

struct Entry {
  Entry(ConnectionPtr c, std::any ctx, AddressState* a)
      : conn(std::move(c)), context(std::move(ctx)), address(a) {}
  // Constant after construction.
  const ConnectionPtr conn;
  const std::any context;       // copy of conn->context() taken after the dial
  AddressState* const address;  // owned by the Core; never freed before it

  // Guarded by Core::mu_.
  EntryState state = EntryState::kLeased;
  absl::Time idle_since;
};

// Everything the pool knows about one address. Guarded by Core::mu_, except
// `address`, which is constant.
struct AddressState {
  explicit AddressState(std::string a) : address(std::move(a)) {}
  const std::string address;
  std::deque<std::shared_ptr<Entry>> idle;      // least recently used first
  std::deque<std::shared_ptr<Waiter>> waiters;  // FIFO
  size_t leased = 0;
  size_t closing = 0;
  size_t dialing = 0;
  absl::Time warm_backoff_until = absl::InfinitePast();
  ConnectionPoolStats counters;  // counter fields only; gauges are computed

  // Every connection that exists or is being dialed: the hard cap applies.
  size_t total() const { return idle.size() + leased + closing + dialing; }
  // Dials in flight that no queued waiter is counting on.
  size_t spare_dials() const { return dialing > waiters.size() ? dialing - waiters.size() : 0; }
};

class Core : public std::enable_shared_from_this<Core> {
 public:
  explicit Core(const ConnectionPoolOptions& options) : options_(options) {
    dial_options_.timeout = options.dial_timeout;
    dial_options_.connection = options.connection;
    dial_options_.keepalive = options.keepalive;
    dial_options_.callbacks = options.callbacks;
  }

  void StartMaintenance() {
    if (options_.idle_timeout == absl::InfiniteDuration() && options_.min_idle == 0) return;
    absl::Duration interval = options_.maintenance_interval;
    if (interval <= absl::ZeroDuration()) {
      interval =
          options_.idle_timeout == absl::InfiniteDuration()
              ? absl::Seconds(1)
              : std::clamp(options_.idle_timeout / 4, absl::Milliseconds(10), absl::Seconds(1));
    }
    maintenance_interval_ = interval;
    maintenance_loop_ = options_.group->Next();
    std::weak_ptr<Core> weak = weak_from_this();
    TimerId id = maintenance_loop_->RunEvery(interval, [weak] {
      if (auto self = weak.lock()) self->Maintain();
    });
    MutexLock lock(&mu_);
    maintenance_timer_ = id;
  }

  void Acquire(absl::string_view address, absl::Time deadline, AcquireCallback done) {
    Actions actions;
    {
      MutexLock lock(&mu_);
      if (shut_down_) {
        PostResultLocked(std::move(done), absl::CancelledError("connection pool destroyed"),
                         &actions);
      } else {
        AddressState* a = GetAddressLocked(address);
        auto waiter = std::make_shared<Waiter>();
        waiter->done = std::move(done);
        waiter->deadline = deadline;
        bool must_wait = a->total() >= options_.max_active_per_address && a->spare_dials() == 0;
        size_t uncovered = a->waiters.size() - std::min(a->dialing, a->waiters.size());
        if (a->waiters.empty() && !a->idle.empty()) {
          TakeIdleForLocked(a, waiter, &actions);
        } else if (must_wait && uncovered >= options_.max_waiters) {
          a->counters.rejected++;
          PostResultLocked(
              std::move(waiter->done),
              absl::ResourceExhaustedError(absl::StrCat(
                  "connection pool: ", a->total(), " connections to ", a->address,
                  " (the cap) and ", uncovered, " callers already waiting (max_waiters)")),
              &actions);
        } else if (deadline <= absl::Now()) {
          PostResultLocked(std::move(waiter->done),
                           absl::DeadlineExceededError(absl::StrCat(
                               "connection pool: deadline passed before a connection to ",
                               a->address, " was available")),
                           &actions);
        } else {
          if (must_wait) a->counters.waits++;
          EnqueueLocked(a, waiter, /*front=*/false);
          PumpLocked(a, &actions);
        }
      }
    }
    RunActions(actions);
  }

  void WarmUp(absl::string_view address) {
    Actions actions;
    {
      MutexLock lock(&mu_);
      if (shut_down_) return;
      PumpLocked(GetAddressLocked(address), &actions);
    }
    RunActions(actions);
  }

  // From Lease::Release(), any thread.
  void Return(const std::shared_ptr<Entry>& entry, bool broken) {
    bool reuse = !broken;
    {
      MutexLock lock(&mu_);
      if (entry->state == EntryState::kClosed) return;
      if (shut_down_) reuse = false;
      busy_++;  // on_release must not run while the destructor finishes
    }
    if (reuse && !entry->conn->active()) reuse = false;
    if (reuse && options_.on_release) reuse = options_.on_release(entry->conn, entry->context);
    Actions actions;
    {
      MutexLock lock(&mu_);
      if (entry->state == EntryState::kLeased) {
        if (reuse && !shut_down_) {
          OfferLocked(entry, /*fresh=*/false, &actions);
        } else {
          CloseLeasedLocked(entry, absl::CancelledError("connection pool: lease broken"), &actions);
        }
      }
      DoneBusyLocked();
    }
    RunActions(actions);
  }

  // Aborts when called on a loop thread of the group.
  void AssertNotOnLoopThread(absl::string_view what) const {
    for (int i = 0; i < options_.group->size(); ++i) {
      NP_CHECK(!options_.group->loop(i)->IsInLoopThread())
          << what << " on a loop thread of the pool's group would deadlock";
    }
  }

  void Shutdown() {
    AssertNotOnLoopThread("ConnectionPool destruction");
    Actions actions;
    {
      MutexLock lock(&mu_);
      shut_down_ = true;
      if (maintenance_timer_ != kInvalidTimerId) maintenance_loop_->Cancel(maintenance_timer_);
      maintenance_timer_ = kInvalidTimerId;
      for (auto& [name, a] : addresses_) {
        for (auto& waiter : a->waiters) {
          FinishWaiterLocked(*waiter);
          PostResultLocked(std::move(waiter->done),
                           absl::CancelledError("connection pool destroyed"), &actions);
        }
        a->waiters.clear();
      }
      for (auto& [id, entry] : live_) {
        if (entry->state == EntryState::kIdle) {
          RemoveIdleLocked(entry.get());
          entry->state = EntryState::kClosing;
          entry->address->closing++;
        }
        if (entry->state != EntryState::kClosed) {
          // Leased ones stay kLeased: their close callback uncounts them.
          actions.push_back([conn = entry->conn] {
            conn->Close(absl::CancelledError("connection pool destroyed"));
          });
        }
      }
    }
    RunActions(actions);
    MutexLock lock(&mu_);
    while (busy_ > 0 || !live_.empty()) all_done_.Wait(&mu_);
  }

  ConnectionPoolStats Stats(const absl::string_view* address) const {
    ConnectionPoolStats total;
    MutexLock lock(&mu_);
    for (const auto& [name, a] : addresses_) {
      if (address != nullptr && name != *address) continue;
      ConnectionPoolStats s = a->counters;
      s.idle = static_cast<int64_t>(a->idle.size());
      s.active = static_cast<int64_t>(a->leased);
      s.dialing = static_cast<int64_t>(a->dialing);
      s.waiting = static_cast<int64_t>(a->waiters.size());
      total += s;
    }
    return total;
  }

 private:
  AddressState* GetAddressLocked(absl::string_view address) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto& slot = addresses_[address];
    if (!slot) slot = std::make_unique<AddressState>(std::string(address));
    return slot.get();
  }

  // Queues `waiter` and arms its deadline timer (once).
  void EnqueueLocked(AddressState* a, const std::shared_ptr<Waiter>& waiter, bool front)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiter->state = Waiter::State::kQueued;
    if (front) {
      a->waiters.push_front(waiter);
    } else {
      a->waiters.push_back(waiter);
    }
    if (waiter->deadline == absl::InfiniteFuture() || waiter->timer != kInvalidTimerId) return;
    waiter->timer_loop = options_.group->Next();
    std::weak_ptr<Core> weak_core = weak_from_this();
    std::weak_ptr<Waiter> weak_waiter = waiter;
    waiter->timer =
        waiter->timer_loop->RunAfter(std::max(waiter->deadline - absl::Now(), absl::ZeroDuration()),
                                     [weak_core, weak_waiter, a] {
                                       auto core = weak_core.lock();
                                       auto waiter = weak_waiter.lock();
                                       if (core && waiter) core->OnWaiterTimeout(a, waiter);
                                     });
  }

  // The waiter's callback is about to run: it leaves every queue for good.
  void FinishWaiterLocked(Waiter& waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiter.state = Waiter::State::kDone;
    if (waiter.timer != kInvalidTimerId) waiter.timer_loop->Cancel(waiter.timer);
    waiter.timer = kInvalidTimerId;
  }

  // Runs `done(result)` on a loop of the group, never inline.
  void PostResultLocked(AcquireCallback done, absl::Status result, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    busy_++;
    EventLoop* loop = options_.group->Next();
    actions->push_back([self = shared_from_this(), loop, done = std::move(done),
                        result = std::move(result)]() mutable {
      loop->QueueInLoop([self, done = std::move(done), result = std::move(result)]() mutable {
        done(std::move(result));
        self->DoneBusy();
      });
    });
  }

  void OnWaiterTimeout(AddressState* a, const std::shared_ptr<Waiter>& waiter) {
    AcquireCallback done;
    {
      MutexLock lock(&mu_);
      waiter->timer_fired = true;
      waiter->timer = kInvalidTimerId;
      if (waiter->state != Waiter::State::kQueued) return;
      a->waiters.erase(std::find(a->waiters.begin(), a->waiters.end(), waiter));
      waiter->state = Waiter::State::kDone;
      a->counters.wait_timeouts++;
      done = std::move(waiter->done);
      busy_++;
    }
    done(absl::DeadlineExceededError(
        absl::StrCat("connection pool: timed out waiting for a connection to ", a->address,
                     " (max_active_per_address=", options_.max_active_per_address, ")")));
    DoneBusy();
  }

  // Leases the most recently used idle connection of `a` to `waiter`.
  void TakeIdleForLocked(AddressState* a, const std::shared_ptr<Waiter>& waiter, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::shared_ptr<Entry> entry = a->idle.back();
    a->idle.pop_back();
    global_idle_--;
    entry->state = EntryState::kLeased;
    a->leased++;
    a->counters.reused++;
    HandOffLocked(entry, waiter, /*reused=*/true, actions);
  }

  // Hands a pooled connection to `waiter` from a zero-delay timer on the
  // connection's loop: the timer runs after that loop has polled again, so a
  // close that already reached this host has been processed by then.
  void HandOffLocked(const std::shared_ptr<Entry>& entry, const std::shared_ptr<Waiter>& waiter,
                     bool reused, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    waiter->state = Waiter::State::kHandoff;
    busy_++;
    actions->push_back([self = shared_from_this(), entry, waiter, reused] {
      entry->conn->loop()->RunAfter(absl::ZeroDuration(), [self, entry, waiter, reused] {
        self->FinishHandoff(entry, waiter, reused);
      });
    });
  }

  // Loop thread of the entry's connection.
  void FinishHandoff(const std::shared_ptr<Entry>& entry, const std::shared_ptr<Waiter>& waiter,
                     bool reused) {
    Actions actions;
    AcquireCallback done;
    absl::StatusOr<Lease> result = absl::CancelledError("connection pool destroyed");
    {
      MutexLock lock(&mu_);
      AddressState* a = entry->address;
      bool alive = entry->state == EntryState::kLeased && entry->conn->active();
      if (shut_down_ || alive) {
        FinishWaiterLocked(*waiter);
        done = std::move(waiter->done);
        if (!shut_down_) result = Lease(shared_from_this(), entry, reused);
      } else {
        // The connection died while idle: drop it and put the caller back at
        // the head of the queue.
        if (entry->state == EntryState::kLeased) {
          CloseLeasedLocked(entry, absl::UnavailableError("connection pool: connection died"),
                            &actions);
          a->counters.dead++;
        }
        if (waiter->timer_fired || absl::Now() >= waiter->deadline) {
          FinishWaiterLocked(*waiter);
          a->counters.wait_timeouts++;
          done = std::move(waiter->done);
          result = absl::DeadlineExceededError(
              absl::StrCat("connection pool: timed out waiting for a connection to ", a->address));
        } else {
          EnqueueLocked(a, waiter, /*front=*/true);
          PumpLocked(a, &actions);
        }
      }
    }
    RunActions(actions);
    if (done) done(std::move(result));
    DoneBusy();
  }

  // `entry` (kLeased, counted in leased) becomes available: to the first
  // waiter, else to the idle list.
  void OfferLocked(const std::shared_ptr<Entry>& entry, bool fresh, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    AddressState* a = entry->address;
    if (!a->waiters.empty()) {
      std::shared_ptr<Waiter> waiter = a->waiters.front();
      a->waiters.pop_front();
      if (!fresh) a->counters.reused++;
      HandOffLocked(entry, waiter, /*reused=*/!fresh, actions);
      return;
    }
    if (options_.max_idle_per_address == 0 || options_.max_idle_global == 0) {
      a->counters.evicted++;
      CloseLeasedLocked(entry, absl::CancelledError("connection pool: no idle slots"), actions);
      return;
    }
    if (a->idle.size() >= options_.max_idle_per_address) {
      RetireIdleLocked(a->idle.front(), "max_idle_per_address", actions);
    }
    if (global_idle_ >= options_.max_idle_global) {
      Entry* oldest = nullptr;
      for (auto& [name, other] : addresses_) {
        if (!other->idle.empty() &&
            (oldest == nullptr || other->idle.front()->idle_since < oldest->idle_since)) {
          oldest = other->idle.front().get();
        }
      }
      if (oldest != nullptr) {
        RetireIdleLocked(oldest->address->idle.front(), "max_idle_global", actions);
      }
    }
    a->leased--;
    entry->state = EntryState::kIdle;
    entry->idle_since = MonotonicNow();
    a->idle.push_back(entry);
    global_idle_++;
  }

  void RemoveIdleLocked(Entry* entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto& idle = entry->address->idle;
    auto it = std::find_if(idle.begin(), idle.end(),
                           [entry](const std::shared_ptr<Entry>& e) { return e.get() == entry; });
    NP_CHECK(it != idle.end()) << "idle connection missing from its idle list";
    idle.erase(it);
    global_idle_--;
  }

  // `entry` by value: callers pass an element of an idle list, which
  // RemoveIdleLocked erases (a reference would dangle).
  void RetireIdleLocked(
      std::shared_ptr<Entry> entry,  // NOLINT(performance-unnecessary-value-param)
      absl::string_view why, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    RemoveIdleLocked(entry.get());
    entry->state = EntryState::kClosing;
    entry->address->closing++;
    entry->address->counters.evicted++;
    actions->push_back([conn = entry->conn, why = std::string(why)] {
      conn->Close(absl::CancelledError(absl::StrCat("connection pool: ", why)));
    });
  }

  void CloseLeasedLocked(const std::shared_ptr<Entry>& entry, absl::Status reason, Actions* actions)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    entry->state = EntryState::kClosing;
    entry->address->leased--;
    entry->address->closing++;
    actions->push_back([conn = entry->conn, reason = std::move(reason)] { conn->Close(reason); });
  }

  // Matches supply with demand for `a`: idle connections to waiters, dials
  // for waiters no dial is counting on, and min_idle warm-up dials.
  void PumpLocked(AddressState* a, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (shut_down_) return;
    while (!a->waiters.empty() && !a->idle.empty()) {
      std::shared_ptr<Waiter> waiter = a->waiters.front();
      a->waiters.pop_front();
      TakeIdleForLocked(a, waiter, actions);
    }
    const size_t cap = options_.max_active_per_address;
    while (a->waiters.size() > a->dialing && a->total() < cap) StartDialLocked(a, actions);
    if (options_.min_idle > 0 && MonotonicNow() >= a->warm_backoff_until) {
      size_t want = std::min(options_.min_idle, options_.max_idle_per_address);
      while (a->idle.size() + a->spare_dials() < want && a->total() < cap &&
             global_idle_ + a->spare_dials() < options_.max_idle_global) {
        StartDialLocked(a, actions);
      }
    }
  }

  void StartDialLocked(AddressState* a, Actions* actions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    a->dialing++;
    a->counters.dials++;
    busy_++;
    EventLoop* loop = options_.group->Next();
    // Queued, so that a dial that completes at once never runs its result
    // inside Acquire().
    actions->push_back([self = shared_from_this(), a, loop] {
      loop->QueueInLoop([self, a, loop] {
        Dialer::Dial(loop, a->address, self->dial_options_,
                     [self, a](absl::StatusOr<ConnectionPtr> conn) {
                       self->OnDialDone(a, std::move(conn));
                     });
      });
    });
  }

  // Loop thread (the Dialer's done callback).
  void OnDialDone(AddressState* a, absl::StatusOr<ConnectionPtr> dialed) {
    Actions actions;
    AcquireCallback done;
    absl::StatusOr<Lease> result = absl::UnknownError("unset");
    if (!dialed.ok()) {
      // The dial's own timeout is the address failing to connect (or to
      // finish its TLS handshake) in time, not the waiter's deadline: the
      // waiter may try elsewhere.
      result = absl::IsDeadlineExceeded(dialed.status())
                   ? absl::UnavailableError(dialed.status().message())
                   : dialed.status();
      MutexLock lock(&mu_);
      a->dialing--;
      a->counters.dial_failures++;
      a->warm_backoff_until = MonotonicNow() + maintenance_interval_;
      if (a->waiters.size() > a->dialing) {
        // Fewer dials than waiters now: the oldest waiter gets this error.
        std::shared_ptr<Waiter> waiter = a->waiters.front();
        a->waiters.pop_front();
        FinishWaiterLocked(*waiter);
        done = std::move(waiter->done);
      }
      PumpLocked(a, &actions);
    } else {
      ConnectionPtr conn = std::move(*dialed);
      auto entry = std::make_shared<Entry>(conn, conn->context(), a);
      {
        // Still counted as dialing until placed below: a Pump in between
        // (maintenance, another thread) must not see one connection too few
        // and dial an extra one.
        MutexLock lock(&mu_);
        entry->state = EntryState::kArriving;
        live_[conn->id()] = entry;
      }
      // Runs at once (here) when the connection is already closed.
      std::weak_ptr<Core> weak = weak_from_this();
      conn->AddCloseCallback([weak, entry] {
        if (auto self = weak.lock()) self->OnClosed(entry);
      });
      MutexLock lock(&mu_);
      if (entry->state == EntryState::kArriving) {
        a->dialing--;
        a->leased++;
        entry->state = EntryState::kLeased;
        if (shut_down_) {
          CloseLeasedLocked(entry, absl::CancelledError("connection pool destroyed"), &actions);
        } else if (!a->waiters.empty()) {
          std::shared_ptr<Waiter> waiter = a->waiters.front();
          a->waiters.pop_front();
          FinishWaiterLocked(*waiter);
          done = std::move(waiter->done);
          result = Lease(shared_from_this(), entry, /*reused=*/false);
        } else {
          OfferLocked(entry, /*fresh=*/true, &actions);
        }
      }
      PumpLocked(a, &actions);
    }
    RunActions(actions);
    if (done) done(std::move(result));
    DoneBusy();
  }

  // A pooled connection's close callback (its loop thread).
  void OnClosed(const std::shared_ptr<Entry>& entry) {
    Actions actions;
    {
      MutexLock lock(&mu_);
      AddressState* a = entry->address;
      switch (entry->state) {
        case EntryState::kArriving:
          a->dialing--;
          a->counters.dead++;
          break;
        case EntryState::kIdle:
          RemoveIdleLocked(entry.get());
          a->counters.dead++;
          break;
        case EntryState::kLeased:
          a->leased--;
          a->counters.dead++;
          break;
        case EntryState::kClosing:
          a->closing--;
          break;
        case EntryState::kClosed:
          return;
      }
      entry->state = EntryState::kClosed;
      live_.erase(entry->conn->id());
      PumpLocked(a, &actions);
      if (busy_ == 0 && live_.empty()) all_done_.SignalAll();
    }
    RunActions(actions);
  }

  // The maintenance timer: idle timeout and warm-up.
  void Maintain() {
    Actions actions;
    {
      MutexLock lock(&mu_);
      if (shut_down_) return;
      absl::Time now = MonotonicNow();
      for (auto& [name, a] : addresses_) {
        while (!a->idle.empty() && now - a->idle.front()->idle_since >= options_.idle_timeout) {
          RetireIdleLocked(a->idle.front(), "idle timeout", &actions);
        }
        PumpLocked(a.get(), &actions);
      }
    }
    RunActions(actions);
  }

  void DoneBusy() {
    MutexLock lock(&mu_);
    DoneBusyLocked();
  }
  void DoneBusyLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    busy_--;
    if (busy_ == 0 && live_.empty()) all_done_.SignalAll();
  }

  // Constant after construction (maintenance_* after StartMaintenance()).
  const ConnectionPoolOptions options_;
  DialOptions dial_options_;
  absl::Duration maintenance_interval_ = absl::Seconds(1);
  EventLoop* maintenance_loop_ = nullptr;

  mutable Mutex mu_;
  CondVar all_done_;  // busy_ == 0 and live_ empty, for Shutdown()
  absl::flat_hash_map<std::string, std::unique_ptr<AddressState>> addresses_ ABSL_GUARDED_BY(mu_);
  // Every dialed connection whose close callback has not run, by id.
  absl::flat_hash_map<uint64_t, std::shared_ptr<Entry>> live_ ABSL_GUARDED_BY(mu_);
  size_t global_idle_ ABSL_GUARDED_BY(mu_) = 0;
  // Dials, hand-offs, posted callbacks and returns in progress.
  int64_t busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  TimerId maintenance_timer_ ABSL_GUARDED_BY(mu_) = kInvalidTimerId;
};

}  // namespace connection_pool_internal

ConnectionPoolStats& ConnectionPoolStats::operator+=(const ConnectionPoolStats& other) {
  idle += other.idle;
  active += other.active;
  dialing += other.dialing;
  waiting += other.waiting;
  dials += other.dials;
  dial_failures += other.dial_failures;
  reused += other.reused;
  waits += other.waits;
  wait_timeouts += other.wait_timeouts;
  rejected += other.rejected;
  evicted += other.evicted;
  dead += other.dead;
  return *this;
}

// ---------------------------------------------------------------- Lease

ConnectionPool::Lease::Lease(std::shared_ptr<connection_pool_internal::Core> core,
                             std::shared_ptr<connection_pool_internal::Entry> entry, bool reused)
    : core_(std::move(core)), entry_(std::move(entry)), reused_(reused) {}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : core_(std::move(other.core_)),
      entry_(std::move(other.entry_)),
      reused_(other.reused_),
      broken_(other.broken_) {}

ConnectionPool::Lease& ConnectionPool::Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    Release();
    core_ = std::move(other.core_);
    entry_ = std::move(other.entry_);
    reused_ = other.reused_;
    broken_ = other.broken_;
  }
  return *this;
}

const ConnectionPtr& ConnectionPool::Lease::connection() const {
  static const ConnectionPtr* const kNull = new ConnectionPtr();
  return entry_ ? entry_->conn : *kNull;
}

const std::any& ConnectionPool::Lease::context() const {
  static const std::any* const kEmpty = new std::any();
  return entry_ ? entry_->context : *kEmpty;
}

void ConnectionPool::Lease::Release() {
  if (!entry_) return;
  auto core = std::move(core_);
  auto entry = std::move(entry_);
  core->Return(entry, broken_);
}

// ---------------------------------------------------------------- ConnectionPool

absl::StatusOr<std::unique_ptr<ConnectionPool>> ConnectionPool::Create(
    const ConnectionPoolOptions& options) {
  if (options.group == nullptr || options.group->size() == 0) {
    return absl::InvalidArgumentError("ConnectionPool needs an EventLoopGroup");
  }
  if (options.max_active_per_address == 0) {
    return absl::InvalidArgumentError("max_active_per_address must be at least 1");
  }
  auto core = std::make_shared<connection_pool_internal::Core>(options);
  core->StartMaintenance();
  return std::unique_ptr<ConnectionPool>(new ConnectionPool(std::move(core)));
}

ConnectionPool::ConnectionPool(std::shared_ptr<connection_pool_internal::Core> core)
    : core_(std::move(core)) {}

ConnectionPool::~ConnectionPool() { core_->Shutdown(); }

void ConnectionPool::Acquire(absl::string_view address, absl::Time deadline, AcquireCallback done) {
  core_->Acquire(address, deadline, std::move(done));
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::AcquireSync(absl::string_view address,
                                                                  absl::Time deadline) {
  core_->AssertNotOnLoopThread("ConnectionPool::AcquireSync");
  Notification finished;
  absl::StatusOr<Lease> result = absl::UnknownError("acquire did not complete");
  Acquire(address, deadline, [&](absl::StatusOr<Lease> lease) {
    result = std::move(lease);
    finished.Notify();
  });
  finished.WaitForNotification();
  return result;
}

void ConnectionPool::WarmUp(absl::string_view address) { core_->WarmUp(address); }

ConnectionPoolStats ConnectionPool::Stats() const { return core_->Stats(nullptr); }

ConnectionPoolStats ConnectionPool::Stats(absl::string_view address) const {
  return core_->Stats(&address);
}

}  // namespace netpoll
