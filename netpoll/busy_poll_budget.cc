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

}  // namespace netpoll
