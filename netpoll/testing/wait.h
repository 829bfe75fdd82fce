// WaitFor: waits for a condition instead of for a guessed amount of time.
//
//   ASSERT_TRUE(WaitFor([&] { return server->connection_count() == 0; }));
//
// A test that sleeps "long enough" for something to happen fails when the
// machine is slow (a loaded CI box, a sanitizer build); one that waits for the
// thing itself only needs a deadline far beyond any plausible delay. Prefer an
// event the code exposes (a Notification, a callback) where there is one;
// WaitFor is for state that can only be polled (counters, stats).
//
// Thread safety: `condition` runs on the calling thread only.
#ifndef NETPOLL_TESTING_WAIT_H_
#define NETPOLL_TESTING_WAIT_H_

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"

namespace netpoll::testing {

// Generous on purpose: reached only when the condition never holds, so it
// costs nothing on a passing run and keeps slow machines from failing.
inline constexpr absl::Duration kWaitForTimeout = absl::Seconds(20);

// Polls `condition` (about every millisecond) until it returns true or
// `timeout` passes; returns the condition's last value.
bool WaitFor(absl::FunctionRef<bool()> condition, absl::Duration timeout = kWaitForTimeout);

}  // namespace netpoll::testing

#endif  // NETPOLL_TESTING_WAIT_H_
