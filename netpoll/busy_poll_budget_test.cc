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
  budget.LearnGap(absl::Microseconds(5));
  EXPECT_EQ(budget.window(), kPoll);
  budget.LearnGap(absl::Microseconds(12));
  EXPECT_EQ(budget.window(), kPoll);
}

TEST(BusyPollBudget, WindowStretchesToCatchWorkThatComesJustAfterIt) {
  BusyPollBudget budget(kPoll);
  // The poll missed; the sleep after it woke 30 us after the poll began.
  budget.LearnGap(absl::Microseconds(30));
  EXPECT_EQ(budget.window(), absl::Microseconds(45));
  // The longer poll found the work after 24 us: the window fits that gap.
  budget.LearnGap(absl::Microseconds(24));
  EXPECT_EQ(budget.window(), absl::Microseconds(36));
  // Never beyond kMaxStretch polls.
  budget.LearnGap(absl::Microseconds(55));
  EXPECT_EQ(budget.window(), BusyPollBudget::kMaxStretch * kPoll);
}

TEST(BusyPollBudget, WorkTooLateToCatchPutsTheWindowBackToThePoll) {
  BusyPollBudget budget(kPoll);
  budget.LearnGap(absl::Microseconds(30));
  ASSERT_GT(budget.window(), kPoll);
  // A peer that answers after 80 us (or sparse input): polling up to the
  // maximum would not catch it, so polls stay short.
  budget.LearnGap(absl::Microseconds(80));
  EXPECT_EQ(budget.window(), kPoll);
  budget.LearnGap(absl::Milliseconds(1));
  EXPECT_EQ(budget.window(), kPoll);
}

TEST(BusyPollBudget, ZeroPollNeverPolls) {
  BusyPollBudget budget(absl::ZeroDuration());
  EXPECT_FALSE(budget.MayPoll(kStart));
  EXPECT_FALSE(budget.MayPoll(kStart + absl::Hours(1)));
}

}  // namespace
}  // namespace netpoll
