// Retries: which failures may be retried, how long to wait, and a budget that
// keeps retries from amplifying an outage.
//
// Retried by default (the request did not reach a handler, or the server
// refused it before running it): failures on our side of the connection
// (EFAILEDSOCKET: could not connect, or the connection broke; EOVERCROWDED:
// too much queued), and ELOGOFF answered by a stopping server. An error code
// the server answered with is otherwise its own verdict (a gateway relaying
// its downstream's EFAILEDSOCKET has already retried): not retried, unless
// listed in retryable_error_codes for calls marked idempotent
// (CallOptions::idempotent), which applies to local failures too.
//
// Backoff: exponential from initial_backoff by `multiplier` up to
// max_backoff, each wait scaled by a random factor in [1 - jitter, 1 + jitter].
// A retry is never scheduled past the call's deadline.
//
// Budget (token bucket, like gRPC's retry throttling): every call adds `ratio`
// tokens (capped at max_tokens); every retry or backup request spends one and
// is allowed only while at least one token is left. At a steady rate of N
// calls, retries add at most ratio * N extra attempts (10 % by default) after
// the initial burst of max_tokens, whatever fails.
//
// Thread safety: RetryBudget is safe from any thread; RetryOptions is a value.
#ifndef RPC_RETRY_POLICY_H_
#define RPC_RETRY_POLICY_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace nprpc {

struct RetryOptions {
  // Attempts after the first one. 0 disables retries.
  int max_retries = 3;
  absl::Duration initial_backoff = absl::Milliseconds(5);
  absl::Duration max_backoff = absl::Milliseconds(500);
  double multiplier = 2.0;
  double jitter = 0.2;
  // Also retried, for idempotent calls only.
  std::vector<int32_t> retryable_error_codes;
  // Budget: tokens added per call, and the bucket's size.
  double budget_ratio = 0.1;
  double budget_max_tokens = 10;
};

// Whether a failed attempt may be retried. `answered_by_server`: the status
// came in the server's response rather than from the client side.
bool IsRetryable(const absl::Status& status, bool answered_by_server, bool idempotent,
                 const RetryOptions& options);

// The wait before retry number `retry` (1 for the first retry).
absl::Duration RetryBackoff(int retry, const RetryOptions& options);

class RetryBudget {
 public:
  explicit RetryBudget(const RetryOptions& options);
  // A new call: adds budget_ratio tokens.
  void OnCall();
  // Spends a token for a retry or backup request; false when the budget is
  // exhausted.
  bool TrySpend();
  double tokens() const;

 private:
  static constexpr int64_t kScale = 1000;  // milli-tokens
  const int64_t ratio_;
  const int64_t max_;
  std::atomic<int64_t> milli_tokens_;
};

}  // namespace nprpc

#endif  // RPC_RETRY_POLICY_H_
