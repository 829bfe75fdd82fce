#include "rpc/internal/memory_releaser.h"

#include <memory>

#include "gtest/gtest.h"
#include "netpoll/event_loop_group.h"
#include "netpoll/memory_budget.h"
#include "netpoll/testing/wait.h"

namespace nprpc {
namespace {

using netpoll::testing::WaitFor;

class MemoryReleaserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    group_ = std::move(*netpoll::EventLoopGroup::Create({.num_loops = 2, .name = "mr-test"}));
  }
  void TearDown() override { group_->Stop(); }

  std::unique_ptr<netpoll::EventLoopGroup> group_;
  std::shared_ptr<netpoll::MemoryBudget> budget_ =
      std::make_shared<netpoll::MemoryBudget>(size_t{1} << 30);
};

TEST_F(MemoryReleaserTest, ReleasesOnceWhenABurstEnds) {
  MemoryReleaser releaser(
      group_.get(), budget_,
      {.interval = absl::Milliseconds(10), .burst_bytes = 1 << 20, .on_release = nullptr});
  releaser.Start();
  budget_->Add(8 << 20);
  budget_->Add(-(8 << 20));
  ASSERT_TRUE(WaitFor([&] { return releaser.releases() == 1; }));
  releaser.Stop();
  EXPECT_EQ(releaser.releases(), 1);  // the peak was taken: one release per burst
}

TEST_F(MemoryReleaserTest, SteadyUseIsNotABurst) {
  MemoryReleaser releaser(
      group_.get(), budget_,
      {.interval = absl::Milliseconds(1), .burst_bytes = 1 << 20, .on_release = nullptr});
  releaser.Start();
  // Many checks run while the budget holds a steady amount below the burst
  // size above its level; then a burst: only it counts.
  budget_->Add(512 << 10);
  budget_->Add(4 << 20);
  budget_->Add(-(4 << 20));
  ASSERT_TRUE(WaitFor([&] { return releaser.releases() >= 1; }));
  budget_->Add(256 << 10);
  budget_->Add(-(256 << 10));
  releaser.Stop();
  EXPECT_EQ(releaser.releases(), 1);
}

TEST_F(MemoryReleaserTest, StopIsIdempotentAndStopsTheChecks) {
  MemoryReleaser releaser(
      group_.get(), budget_,
      {.interval = absl::Milliseconds(1), .burst_bytes = 1 << 20, .on_release = nullptr});
  releaser.Start();
  releaser.Stop();
  releaser.Stop();
  budget_->Add(8 << 20);
  budget_->Add(-(8 << 20));
  // No timer is left: a check would have to be queued behind this task.
  netpoll::Notification ran;
  group_->loop(0)->RunAfter(absl::Milliseconds(20), [&] { ran.Notify(); });
  ran.WaitForNotification();
  EXPECT_EQ(releaser.releases(), 0);
}

}  // namespace
}  // namespace nprpc
