#include "rpc/retry_policy.h"

#include <algorithm>
#include <cmath>
#include <random>

#include "rpc/errors.h"

namespace nprpc {

bool IsRetryable(const absl::Status& status, bool answered_by_server, bool idempotent,
                 const RetryOptions& options) {
  if (status.ok()) return false;
  int32_t code = ErrorCodeOf(status);
  if (code == ELOGOFF) return true;
  if (!answered_by_server && (code == EFAILEDSOCKET || code == EOVERCROWDED)) return true;
  if (!idempotent) return false;
  return std::find(options.retryable_error_codes.begin(), options.retryable_error_codes.end(),
                   code) != options.retryable_error_codes.end();
}

absl::Duration RetryBackoff(int retry, const RetryOptions& options) {
  double base = absl::ToDoubleMicroseconds(options.initial_backoff) *
                std::pow(options.multiplier, std::max(0, retry - 1));
  base = std::min(base, absl::ToDoubleMicroseconds(options.max_backoff));
  thread_local std::mt19937_64 rng{std::random_device{}()};
  double jitter = std::clamp(options.jitter, 0.0, 1.0);
  double factor = std::uniform_real_distribution<double>(1.0 - jitter, 1.0 + jitter)(rng);
  return absl::Microseconds(static_cast<int64_t>(base * factor));
}

RetryBudget::RetryBudget(const RetryOptions& options)
    : ratio_(static_cast<int64_t>(options.budget_ratio * kScale)),
      max_(static_cast<int64_t>(options.budget_max_tokens * kScale)),
      milli_tokens_(max_) {}

void RetryBudget::OnCall() {
  int64_t current = milli_tokens_.load(std::memory_order_relaxed);
  while (current < max_ &&
         !milli_tokens_.compare_exchange_weak(current, std::min(max_, current + ratio_),
                                              std::memory_order_relaxed)) {
  }
}

bool RetryBudget::TrySpend() {
  int64_t current = milli_tokens_.load(std::memory_order_relaxed);
  while (current >= kScale) {
    if (milli_tokens_.compare_exchange_weak(current, current - kScale, std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

double RetryBudget::tokens() const {
  return static_cast<double>(milli_tokens_.load(std::memory_order_relaxed)) / kScale;
}

}  // namespace nprpc
