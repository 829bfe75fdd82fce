#include "netpoll/busy_poll_budget.h"

#include <algorithm>

namespace netpoll {

bool BusyPollBudget::MayPoll(absl::Time now) {
  if (burst_ <= absl::ZeroDuration()) return false;
  if (last_ != absl::InfinitePast()) {
    budget_ = std::min(burst_, budget_ + (now - last_) * kWasteShare);
  }
  last_ = now;
  return budget_ > absl::ZeroDuration();
}

void BusyPollBudget::FoundAfter(absl::Duration gap) {
  window_ = std::clamp(std::max(window_ - window_ / 8, gap * 3 / 2), poll_, poll_ * kMaxStretch);
}

void BusyPollBudget::MissedBy(absl::Duration gap) {
  const absl::Duration most = poll_ * kMaxStretch;
  window_ = gap <= 2 * most ? most : std::max(poll_, window_ / 2);
}

}  // namespace netpoll
