#include "netpoll/busy_poll_budget.h"

#include "gtest/gtest.h"

namespace netpoll {
namespace {

constexpr absl::Duration kPoll = absl::Microseconds(20);
const absl::Time kStart = absl::FromUnixSeconds(1000);

TEST(BusyPollBudget, AllowsABurstOfWastedPollsThenStops) {
  BusyPollBudget budget(kPoll);
  int polls = 0;
  // Back-to-back wasted polls, no time passing between them.
  while (budget.MayPoll(kStart) && polls < 100) {
    budget.Charge(kPoll);
    ++polls;
  }
  EXPECT_EQ(polls, BusyPollBudget::kBurst);
}

TEST(BusyPollBudget, RefillsAtAnEighthOfTheTimePassed) {
  BusyPollBudget budget(kPoll);
  absl::Time now = kStart;
  while (budget.MayPoll(now)) budget.Charge(kPoll);
  // Spent to exactly zero: any time passing allows one poll, which
  // overdraws the budget by about one poll.
  now += absl::Nanoseconds(1);
  ASSERT_TRUE(budget.MayPoll(now));
  budget.Charge(kPoll);
  // Paying that back takes 8 polls' worth of time.
  now += 8 * kPoll - absl::Nanoseconds(2);
  EXPECT_FALSE(budget.MayPoll(now));
  now += absl::Nanoseconds(2);
  EXPECT_TRUE(budget.MayPoll(now));
  // A long quiet spell refills no more than the burst.
  now += absl::Hours(1);
  int polls = 0;
  while (budget.MayPoll(now) && polls < 100) {
    budget.Charge(kPoll);
    ++polls;
  }
  EXPECT_EQ(polls, BusyPollBudget::kBurst);
}

TEST(BusyPollBudget, PollsThatFindWorkCostNothing) {
  BusyPollBudget budget(kPoll);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(budget.MayPoll(kStart));  // never charged
}

TEST(BusyPollBudget, WindowStartsAtThePollAndStaysThereWhileWorkComesWithinIt) {
  BusyPollBudget budget(kPoll);
  EXPECT_EQ(budget.window(), kPoll);
  budget.FoundAfter(absl::Microseconds(5));
  EXPECT_EQ(budget.window(), kPoll);
  budget.FoundAfter(absl::Microseconds(12));
  EXPECT_EQ(budget.window(), kPoll);
}

TEST(BusyPollBudget, MissFollowedSoonByWorkTriesTheLargestWindow) {
  BusyPollBudget budget(kPoll);
  // The poll missed; the sleep after it woke 70 us after the poll began (a
  // 40 us gap plus the wake-up).
  budget.MissedBy(absl::Microseconds(70));
  EXPECT_EQ(budget.window(), BusyPollBudget::kMaxStretch * kPoll);
  // The longer poll found the work after 30 us: the window keeps room for it.
  budget.FoundAfter(absl::Microseconds(30));
  EXPECT_EQ(budget.window(), absl::Microseconds(52.5));
  budget.FoundAfter(absl::Microseconds(30));
  EXPECT_EQ(budget.window(), absl::Microseconds(45.9375));
  budget.FoundAfter(absl::Microseconds(30));
  EXPECT_EQ(budget.window(), absl::Microseconds(45));
}

TEST(BusyPollBudget, ShortGapsShrinkTheWindowSlowlySoLongerOnesStillFit) {
  BusyPollBudget budget(kPoll);
  budget.FoundAfter(absl::Microseconds(40));  // the peer's next request
  ASSERT_EQ(budget.window(), absl::Microseconds(60));
  budget.FoundAfter(absl::Microseconds(3));  // a worker's answer, at once
  EXPECT_EQ(budget.window(), absl::Microseconds(52.5));
  budget.FoundAfter(absl::Microseconds(40));  // still caught
  EXPECT_EQ(budget.window(), absl::Microseconds(60));
}

TEST(BusyPollBudget, WorkTooLateToCatchShrinksTheWindowBackToThePoll) {
  BusyPollBudget budget(kPoll);
  budget.MissedBy(absl::Microseconds(70));
  ASSERT_EQ(budget.window(), absl::Microseconds(60));
  // Sparse input, a millisecond apart: polling longer would not catch it.
  budget.MissedBy(absl::Milliseconds(1));
  EXPECT_EQ(budget.window(), absl::Microseconds(30));
  budget.MissedBy(absl::Milliseconds(1));
  EXPECT_EQ(budget.window(), kPoll);
  budget.MissedBy(absl::Milliseconds(1));
  EXPECT_EQ(budget.window(), kPoll);
}

TEST(BusyPollBudget, ZeroPollNeverPolls) {
  BusyPollBudget budget(absl::ZeroDuration());
  EXPECT_FALSE(budget.MayPoll(kStart));
  EXPECT_FALSE(budget.MayPoll(kStart + absl::Hours(1)));
}

}  // namespace
}  // namespace netpoll
