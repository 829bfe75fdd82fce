#include "netpoll/internal/loop_watchdog.h"

#include <atomic>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "netpoll/mutex.h"
#include "netpoll/testing/wait.h"

namespace netpoll {
namespace {

// A Watchable whose section word the test sets; records what the watchdog
// reports.
class FakeLoop : public Watchable {
 public:
  uint64_t section_word() const override {
    // In advance mode every read sees a new section (odd words).
    return advance_ ? word_.fetch_add(2) : word_.load();
  }
  void OnLongSection(uint64_t section, int ticks) override {
    MutexLock lock(&mu_);
    reports_.emplace_back(section, ticks);
  }
  void set_word(uint64_t w) { word_.store(w); }
  void advance_on_read() {
    word_.store(1);
    advance_ = true;
  }
  std::vector<std::pair<uint64_t, int>> reports() {
    MutexLock lock(&mu_);
    return reports_;
  }

 private:
  mutable std::atomic<uint64_t> word_{0};
  std::atomic<bool> advance_{false};
  Mutex mu_;
  std::vector<std::pair<uint64_t, int>> reports_ ABSL_GUARDED_BY(mu_);
};

using testing::WaitFor;

TEST(LoopWatchdogTest, ReportsASectionSeenAtConsecutiveTicksWithGrowingTickCounts) {
  LoopWatchdog watchdog(absl::Milliseconds(1));
  FakeLoop loop;
  loop.set_word(1);  // in a section from the start
  watchdog.Register(&loop);
  ASSERT_TRUE(WaitFor([&] { return loop.reports().size() >= 3; }));
  watchdog.Unregister(&loop);
  const auto reports = loop.reports();
  for (size_t i = 0; i < reports.size(); ++i) {
    EXPECT_EQ(reports[i].first, 1u);
    EXPECT_EQ(reports[i].second, static_cast<int>(i) + 1);
  }
}

TEST(LoopWatchdogTest, NeverReportsALoopOutsideSections) {
  LoopWatchdog watchdog(absl::Milliseconds(1));
  FakeLoop loop;
  loop.set_word(2);
  watchdog.Register(&loop);
  const int64_t start = watchdog.ticks();
  ASSERT_TRUE(WaitFor([&] { return watchdog.ticks() >= start + 20; }));
  watchdog.Unregister(&loop);
  EXPECT_TRUE(loop.reports().empty());
}

TEST(LoopWatchdogTest, ASectionThatChangesBetweenTicksIsNeverReported) {
  LoopWatchdog watchdog(absl::Milliseconds(1));
  FakeLoop loop;
  loop.advance_on_read();  // a new short section between any two reads
  watchdog.Register(&loop);
  const int64_t start = watchdog.ticks();
  ASSERT_TRUE(WaitFor([&] { return watchdog.ticks() >= start + 20; }));
  watchdog.Unregister(&loop);
  EXPECT_TRUE(loop.reports().empty());
}

TEST(LoopWatchdogTest, DozesWhenNoLoopIsInASectionAndWakesForOne) {
  LoopWatchdog watchdog(absl::Milliseconds(1));
  FakeLoop loop;
  loop.set_word(2);
  watchdog.Register(&loop);
  ASSERT_TRUE(WaitFor([&] { return watchdog.dozing(); }));
  const int64_t ticks = watchdog.ticks();
  // What a loop does when it begins a section.
  loop.set_word(3);
  if (watchdog.dozing()) watchdog.Wake();
  ASSERT_TRUE(WaitFor([&] { return !loop.reports().empty(); }));
  EXPECT_GT(watchdog.ticks(), ticks);
  EXPECT_EQ(loop.reports().front().first, 3u);
  watchdog.Unregister(&loop);
}

TEST(LoopWatchdogTest, AfterUnregisterTheLoopIsNoLongerCalled) {
  LoopWatchdog watchdog(absl::Milliseconds(1));
  FakeLoop loop;
  loop.set_word(1);
  watchdog.Register(&loop);
  ASSERT_TRUE(WaitFor([&] { return !loop.reports().empty(); }));
  watchdog.Unregister(&loop);
  const size_t n = loop.reports().size();
  const int64_t start = watchdog.ticks();
  ASSERT_TRUE(WaitFor([&] { return watchdog.ticks() >= start + 5 || watchdog.dozing(); }));
  EXPECT_EQ(loop.reports().size(), n);
}

}  // namespace
}  // namespace netpoll
