#include "rpc/internal/gate.h"

#include <thread>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"

namespace nprpc {
namespace {

TEST(GateTest, EntersUntilClosedThenRefuses) {
  Gate gate;
  ASSERT_TRUE(gate.TryEnter());
  EXPECT_EQ(gate.size(), 1);
  gate.Close();
  EXPECT_TRUE(gate.closed());
  EXPECT_FALSE(gate.TryEnter());
  EXPECT_EQ(gate.size(), 1);  // the holder inside stays
  gate.Leave();
  EXPECT_EQ(gate.size(), 0);
}

TEST(GateTest, WaitReturnsAtOnceWhenEmpty) {
  Gate gate;
  gate.Close();
  EXPECT_TRUE(gate.WaitUntilEmpty(absl::InfinitePast()));
}

TEST(GateTest, WaitGivesUpAtTheDeadlineWhileAHolderStays) {
  Gate gate;
  ASSERT_TRUE(gate.TryEnter());
  gate.Close();
  EXPECT_FALSE(gate.WaitUntilEmpty(absl::Now() + absl::Milliseconds(5)));
  gate.Leave();
}

TEST(GateTest, WaitReturnsWhenTheLastHolderLeaves) {
  Gate gate;
  ASSERT_TRUE(gate.TryEnter());
  ASSERT_TRUE(gate.TryEnter());
  gate.Close();
  netpoll::Notification waiting;
  std::thread leaver([&] {
    waiting.WaitForNotification();
    gate.Leave();
    gate.Leave();
  });
  waiting.Notify();
  EXPECT_TRUE(gate.WaitUntilEmpty());
  leaver.join();
}

}  // namespace
}  // namespace nprpc
