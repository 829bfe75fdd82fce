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

void BusyPollBudget::LearnGap(absl::Duration gap) {
  const absl::Duration most = poll_ * kMaxStretch;
  window_ = gap > most ? poll_ : std::clamp(gap * 3 / 2, poll_, most);
}

}  // namespace netpoll
