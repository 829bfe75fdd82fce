#include "rpc/retry_policy.h"

#include "gtest/gtest.h"
#include "rpc/errors.h"

namespace nprpc {
namespace {

constexpr bool kLocal = false;
constexpr bool kFromServer = true;

TEST(IsRetryable, LocalConnectionFailuresOverloadAndLogoffAreRetried) {
  RetryOptions options;
  EXPECT_TRUE(IsRetryable(MakeRpcError(EFAILEDSOCKET, "x"), kLocal, false, options));
  EXPECT_TRUE(IsRetryable(MakeRpcError(EOVERCROWDED, "x"), kLocal, false, options));
  EXPECT_TRUE(IsRetryable(MakeRpcError(ELOGOFF, "x"), kFromServer, false, options));
  EXPECT_FALSE(IsRetryable(MakeRpcError(EINTERNAL, "x"), kFromServer, false, options));
  EXPECT_FALSE(IsRetryable(MakeRpcError(ERPCTIMEDOUT, "x"), kLocal, false, options));
  EXPECT_FALSE(IsRetryable(absl::CancelledError("x"), kLocal, false, options));
  EXPECT_FALSE(IsRetryable(absl::OkStatus(), kLocal, false, options));
}

TEST(IsRetryable, ConnectionFailureCodesAnsweredByAServerAreItsVerdict) {
  // A gateway relaying its downstream's failure has retried already.
  RetryOptions options;
  EXPECT_FALSE(IsRetryable(MakeRpcError(EFAILEDSOCKET, "x"), kFromServer, false, options));
  EXPECT_FALSE(IsRetryable(MakeRpcError(EOVERCROWDED, "x"), kFromServer, false, options));
}

// A refused or unmade credential would be refused again: never retried by
// default, whether the server answered it or the client failed it locally.
TEST(IsRetryable, AuthenticationFailuresAreNotRetried) {
  RetryOptions options;
  EXPECT_FALSE(IsRetryable(MakeRpcError(ERPCAUTH, "x"), kFromServer, true, options));
  EXPECT_FALSE(IsRetryable(MakeRpcError(ERPCAUTH, "x"), kLocal, true, options));
}

TEST(IsRetryable, ChosenCodesOnlyForIdempotentCalls) {
  RetryOptions options;
  options.retryable_error_codes = {ELIMIT};
  EXPECT_FALSE(IsRetryable(MakeRpcError(ELIMIT, "x"), kFromServer, /*idempotent=*/false, options));
  EXPECT_TRUE(IsRetryable(MakeRpcError(ELIMIT, "x"), kFromServer, /*idempotent=*/true, options));
  EXPECT_FALSE(
      IsRetryable(MakeRpcError(EINTERNAL, "x"), kFromServer, /*idempotent=*/true, options));
}

TEST(RetryBackoff, GrowsExponentiallyWithinJitterUpToTheCap) {
  RetryOptions options;
  options.initial_backoff = absl::Milliseconds(10);
  options.max_backoff = absl::Milliseconds(100);
  options.multiplier = 2;
  options.jitter = 0.2;
  for (int i = 0; i < 50; ++i) {
    absl::Duration first = RetryBackoff(1, options);
    EXPECT_GE(first, absl::Milliseconds(8));
    EXPECT_LE(first, absl::Milliseconds(12));
    absl::Duration third = RetryBackoff(3, options);
    EXPECT_GE(third, absl::Milliseconds(32));
    EXPECT_LE(third, absl::Milliseconds(48));
    absl::Duration capped = RetryBackoff(20, options);
    EXPECT_LE(capped, absl::Milliseconds(120));
  }
}

TEST(RetryBudget, AllowsABurstThenAboutRatioTimesTheCalls) {
  RetryOptions options;
  options.budget_ratio = 0.1;
  options.budget_max_tokens = 10;
  RetryBudget budget(options);
  int spent = 0;
  for (int call = 0; call < 1000; ++call) {
    budget.OnCall();
    // Every call fails and asks for up to 3 retries (a total outage).
    for (int r = 0; r < 3; ++r) spent += budget.TrySpend() ? 1 : 0;
  }
  EXPECT_GE(spent, 100);
  EXPECT_LE(spent, 10 + 100 + 1);  // burst + 10 % of 1000 calls
}

TEST(RetryBudget, RefillsUpToItsCap) {
  RetryOptions options;
  options.budget_ratio = 0.5;
  options.budget_max_tokens = 2;
  RetryBudget budget(options);
  for (int i = 0; i < 100; ++i) budget.OnCall();
  EXPECT_DOUBLE_EQ(budget.tokens(), 2.0);
  EXPECT_TRUE(budget.TrySpend());
  EXPECT_TRUE(budget.TrySpend());
  EXPECT_FALSE(budget.TrySpend());
}

}  // namespace
}  // namespace nprpc
