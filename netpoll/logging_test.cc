#include "netpoll/logging.h"

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace netpoll {
namespace {

class CapturingSink : public LogSink {
 public:
  void Send(const LogEntry& entry) override {
    records.push_back({entry.severity, std::string(entry.file), std::string(entry.message)});
  }
  struct Record {
    LogSeverity severity;
    std::string file;
    std::string message;
  };
  std::vector<Record> records;
};

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    previous_ = SetLogSink(&sink_);
    SetMinLogSeverity(LogSeverity::kInfo);
  }
  void TearDown() override {
    SetLogSink(previous_);
    SetMinLogSeverity(LogSeverity::kInfo);
  }
  CapturingSink sink_;
  LogSink* previous_ = nullptr;
};

TEST_F(LoggingTest, RecordReachesInstalledSinkWithBaseNameAndMessage) {
  NP_LOG(WARNING) << "closing " << 42 << ": reset";
  ASSERT_EQ(sink_.records.size(), 1u);
  EXPECT_EQ(sink_.records[0].severity, LogSeverity::kWarning);
  EXPECT_EQ(sink_.records[0].file, "logging_test.cc");
  EXPECT_EQ(sink_.records[0].message, "closing 42: reset");
}

TEST_F(LoggingTest, RecordsBelowMinimumAreDroppedWithoutEvaluatingTheStream) {
  SetMinLogSeverity(LogSeverity::kError);
  int evaluated = 0;
  auto count = [&evaluated] { return ++evaluated; };
  NP_LOG(INFO) << count();
  NP_LOG(WARNING) << count();
  EXPECT_TRUE(sink_.records.empty());
  EXPECT_EQ(evaluated, 0);
  NP_LOG(ERROR) << count();
  EXPECT_EQ(sink_.records.size(), 1u);
  EXPECT_EQ(evaluated, 1);
}

TEST_F(LoggingTest, SetLogSinkReturnsThePreviousSink) {
  CapturingSink other;
  EXPECT_EQ(SetLogSink(&other), &sink_);
  NP_LOG(INFO) << "to other";
  EXPECT_EQ(other.records.size(), 1u);
  EXPECT_TRUE(sink_.records.empty());
  EXPECT_EQ(SetLogSink(&sink_), &other);
}

TEST(LoggingDeathTest, FailedCheckAbortsWithConditionAndMessage) {
  int fd = -1;
  EXPECT_DEATH(NP_CHECK(fd >= 0) << "socket() returned " << fd,
               "Check failed: fd >= 0 socket\\(\\) returned -1");
}

TEST(LoggingDeathTest, PassingCheckDoesNotEvaluateTheMessage) {
  int evaluated = 0;
  NP_CHECK(true) << ++evaluated;
  EXPECT_EQ(evaluated, 0);
}

}  // namespace
TEST(LogRateLimiterTest, LetsTheFirstEventOfAnIntervalThroughAndCountsTheRest) {
  LogRateLimiter limiter(absl::Hours(1));
  int64_t skipped = -1;
  EXPECT_TRUE(limiter.Allow(&skipped));
  EXPECT_EQ(skipped, 0);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.Allow(&skipped));
}

TEST(LogRateLimiterTest, ReportsHowManyWereHeldBackWhenTheNextIsAllowed) {
  LogRateLimiter limiter(absl::Milliseconds(1));
  ASSERT_TRUE(limiter.Allow(nullptr));
  int64_t held_back = 0;
  int64_t skipped = -1;
  while (!limiter.Allow(&skipped)) ++held_back;  // until the interval has passed
  EXPECT_EQ(skipped, held_back);
}

}  // namespace netpoll
