#include "examples/microservices/hop_recorder.h"

#include "gtest/gtest.h"

namespace shop {
namespace {

TEST(HopRecorder, CountsCallsAndErrorsAndComputesPercentiles) {
  HopRecorder hop("catalog");
  for (int i = 1; i <= 100; ++i) hop.Record(absl::Microseconds(i), true);
  hop.Record(absl::Seconds(5), false);  // errors carry no latency sample
  HopStats stats = hop.Snapshot();
  EXPECT_EQ(stats.hop(), "catalog");
  EXPECT_EQ(stats.calls(), 101);
  EXPECT_EQ(stats.errors(), 1);
  EXPECT_NEAR(stats.p50_us(), 50, 1);
  EXPECT_NEAR(stats.p99_us(), 99, 1);
}

TEST(HopRecorder, KeepsABoundedRingOfTheLatestSamples) {
  HopRecorder hop("pricing");
  for (size_t i = 0; i < HopRecorder::kMaxSamples; ++i) hop.Record(absl::Seconds(1), true);
  for (size_t i = 0; i < HopRecorder::kMaxSamples; ++i) hop.Record(absl::Microseconds(10), true);
  HopStats stats = hop.Snapshot();
  EXPECT_EQ(stats.calls(), static_cast<int64_t>(2 * HopRecorder::kMaxSamples));
  EXPECT_EQ(stats.p99_us(), 10);  // the old slow samples were overwritten
}

TEST(HopRecorder, EmptyRecorderReportsZeros) {
  HopStats stats = HopRecorder("x").Snapshot();
  EXPECT_EQ(stats.calls(), 0);
  EXPECT_EQ(stats.p50_us(), 0);
}

}  // namespace
}  // namespace shop
