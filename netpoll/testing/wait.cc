#include "netpoll/testing/wait.h"

#include "absl/time/clock.h"

namespace netpoll::testing {

bool WaitFor(absl::FunctionRef<bool()> condition, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!condition()) {
    if (absl::Now() >= deadline) return condition();
    // The poll interval: not a guess at how long anything takes.
    absl::SleepFor(absl::Milliseconds(1));
  }
  return true;
}

}  // namespace netpoll::testing
