// BusyPollBudget: how much time busy polls that find nothing may take.
//
// A thread that polls for work instead of sleeping (an EventLoop before
// epoll_wait, a worker before waiting on its queue) wins a wake-up when work
// comes during the poll and wastes the poll's time when it does not. The
// budget lets the polls that find nothing use a fixed share of the time that
// passes, after a burst: a poll may start while the budget is positive, and
// each wasted poll is charged. A poll that finds work costs nothing.
//
//   BusyPollBudget budget(absl::Microseconds(20));
//   if (budget.MayPoll(now) &&
//       budget.Poll(now, absl::Microseconds(20), [&] { return QueueNotEmpty(); })) {
//     // found work without sleeping
//   }
//
// It is a budget of time rather than a rule on the hit rate because two peers
// that wait for each other (a client and a server at one call in flight) can
// only find each other's work while both poll: once a hit-rate rule had
// switched both off, neither poll could ever succeed again.
//
// The budget also learns how long a poll should last (window()). It starts
// at `poll`; when work keeps coming a little later than that (the peer's
// answer takes 25 us, as over TLS), each poll would miss and the thread would
// sleep and pay the wake-up every time. So the window follows the gaps from
// the start of a poll to the work, between `poll` and kMaxStretch x `poll`:
//  - a poll that found work after `gap` raises the window to 1.5 x gap at
//    once, and otherwise lets it shrink by an eighth: one loop may wait for
//    short gaps (a worker's answer) and long ones (the peer's next request)
//    in turn, and the short ones must not shut out the long ones;
//  - a poll that missed, when the sleep after it ended with work within
//    twice the largest window (the gap then includes a wake-up, tens of
//    microseconds on a VM), tries the largest window next;
//  - work that came later than that (sparse input, a peer that answers after
//    a millisecond) halves the window back towards `poll`.
// Polls that miss are charged to the budget whatever their length, so a
// longer window never spends more than the budget's share of the time.
//
// Thread safety: not synchronized; one owner thread (a loop, a worker).
#ifndef NETPOLL_BUSY_POLL_BUDGET_H_
#define NETPOLL_BUSY_POLL_BUDGET_H_

#include <sched.h>

#include "absl/time/time.h"
#include "netpoll/timer_queue.h"

namespace netpoll {

class BusyPollBudget {
 public:
  // Polls that find nothing may use this share of the time, after a burst of
  // kBurst polls of `poll`.
  static constexpr double kWasteShare = 1.0 / 8;
  static constexpr int kBurst = 16;

  // The window stretches up to this many times `poll`.
  static constexpr int kMaxStretch = 3;

  // `poll`: the shortest window (the burst is kBurst of them). Zero: never
  // poll.
  explicit BusyPollBudget(absl::Duration poll)
      : poll_(poll), burst_(poll * kBurst), budget_(burst_), window_(poll) {}

  // Refills the budget for the time since the previous call (`now` from a
  // monotonic clock); true when a poll may start.
  bool MayPoll(absl::Time now);

  // A poll that lasted `wasted` found nothing.
  void Charge(absl::Duration wasted) { budget_ -= wasted; }

  // How long the next poll should last (see the top of this file).
  absl::Duration window() const { return window_; }
  // The poll that began `gap` ago found work.
  void FoundAfter(absl::Duration gap);
  // The poll found nothing; the sleep after it ended with work `gap` after
  // the poll began.
  void MissedBy(absl::Duration gap);

  // The poll, after MayPoll(start) said yes: calls `ready()` until it returns
  // true or `poll` has passed since `start`, yielding the CPU between calls
  // (so a thread waiting for this CPU, perhaps the peer being waited for,
  // runs first). A poll that ends without ready() is charged. Returns
  // whether ready() returned true.
  template <typename Ready>
  bool Poll(absl::Time start, absl::Duration poll, Ready ready) {
    const absl::Time until = start + poll;
    do {
      if (ready()) return true;
      sched_yield();
    } while (MonotonicNow() < until);
    Charge(MonotonicNow() - start);
    return false;
  }

 private:
  const absl::Duration poll_;
  const absl::Duration burst_;
  absl::Duration budget_;
  absl::Duration window_;
  absl::Time last_ = absl::InfinitePast();
};

}  // namespace netpoll

#endif  // NETPOLL_BUSY_POLL_BUDGET_H_
