#include "bench/histogram.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace bench {
namespace {

TEST(LatencyHistogramTest, EmptyHistogramReportsZeros) {
  LatencyHistogram h;
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Max(), 0);
  EXPECT_EQ(h.Mean(), 0.0);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int v = 1; v <= 100; ++v) h.Record(v);
  EXPECT_EQ(h.Count(), 100);
  EXPECT_EQ(h.Min(), 1);
  EXPECT_EQ(h.Max(), 100);
  EXPECT_DOUBLE_EQ(h.Mean(), 50.5);
  EXPECT_EQ(h.Percentile(50), 50);
  EXPECT_EQ(h.Percentile(99), 99);
  EXPECT_EQ(h.Percentile(100), 100);
  EXPECT_EQ(h.Percentile(0), 1);
}

TEST(LatencyHistogramTest, NegativeValuesAreRecordedAsZero) {
  LatencyHistogram h;
  h.Record(-5);
  EXPECT_EQ(h.Count(), 1);
  EXPECT_EQ(h.Min(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
}

TEST(LatencyHistogramTest, BucketsAreContiguousAndCoverEveryValue) {
  EXPECT_EQ(LatencyHistogram::BucketLowest(0), 0);
  for (int i = 1; i < LatencyHistogram::kNumBuckets; ++i) {
    ASSERT_EQ(LatencyHistogram::BucketLowest(i), LatencyHistogram::BucketHighest(i - 1) + 1)
        << "bucket " << i;
    ASSERT_EQ(LatencyHistogram::BucketIndex(LatencyHistogram::BucketLowest(i)), i);
    ASSERT_EQ(LatencyHistogram::BucketIndex(LatencyHistogram::BucketHighest(i)), i);
  }
  EXPECT_EQ(LatencyHistogram::BucketHighest(LatencyHistogram::kNumBuckets - 1),
            std::numeric_limits<int64_t>::max());
}

TEST(LatencyHistogramTest, LargeValuesAreWithinOneSixtyFourthAbove) {
  for (int64_t v : {int64_t{129}, int64_t{1000}, int64_t{123456}, int64_t{987654321},
                    int64_t{1} << 40, std::numeric_limits<int64_t>::max() / 3}) {
    LatencyHistogram h;
    h.Record(1);  // so that the clamp to Max() does not hide the bucket bound
    h.Record(v);
    h.Record(std::numeric_limits<int64_t>::max());
    const int64_t reported = h.Percentile(50);
    EXPECT_GE(reported, v);
    EXPECT_LE(static_cast<double>(reported - v), static_cast<double>(v) / 64.0) << v;
  }
}

TEST(LatencyHistogramTest, PercentilesOfUniformMicrosecondsAreClose) {
  LatencyHistogram h;
  for (int64_t us = 1; us <= 10000; ++us) h.Record(us * 1000);
  EXPECT_EQ(h.Count(), 10000);
  auto near = [](int64_t got, int64_t want) { return got >= want && got - want <= want / 64; };
  EXPECT_TRUE(near(h.Percentile(50), 5000 * 1000)) << h.Percentile(50);
  EXPECT_TRUE(near(h.Percentile(99), 9900 * 1000)) << h.Percentile(99);
  EXPECT_TRUE(near(h.Percentile(99.9), 9990 * 1000)) << h.Percentile(99.9);
  EXPECT_EQ(h.Percentile(100), 10000 * 1000);
}

TEST(LatencyHistogramTest, MergeAddsCountsAndKeepsExtremes) {
  LatencyHistogram a;
  LatencyHistogram b;
  a.Record(10);
  a.Record(20);
  b.Record(5);
  b.Record(1000);
  a.Merge(b);
  EXPECT_EQ(a.Count(), 4);
  EXPECT_EQ(a.Min(), 5);
  EXPECT_EQ(a.Max(), 1000);
  EXPECT_DOUBLE_EQ(a.Mean(), (10 + 20 + 5 + 1000) / 4.0);

  LatencyHistogram empty;
  empty.Merge(a);
  EXPECT_EQ(empty.Count(), 4);
  EXPECT_EQ(empty.Min(), 5);
}

TEST(LatencyHistogramTest, ResetForgetsEverything) {
  LatencyHistogram h;
  h.Record(42);
  h.Reset();
  EXPECT_EQ(h.Count(), 0);
  EXPECT_EQ(h.Percentile(50), 0);
  h.Record(7);
  EXPECT_EQ(h.Min(), 7);
}

}  // namespace
}  // namespace bench
