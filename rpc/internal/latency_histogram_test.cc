#include "rpc/internal/latency_histogram.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "rpc/internal/metrics_sampler.h"

namespace nprpc {
namespace {

class LatencyHistogramTest : public ::testing::Test {
 protected:
  LatencyHistogramTest() : sampler_(Options(&now_)) {}

  static MetricsSampler::Options Options(absl::Time* now) {
    MetricsSampler::Options options;
    options.start_thread = false;
    options.clock = [now] { return *now; };
    return options;
  }
  // One sampler tick, one second later.
  void AdvanceOneSecond() {
    now_ += absl::Seconds(1);
    sampler_.Tick();
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  MetricsSampler sampler_;
};

TEST_F(LatencyHistogramTest, EveryValueFallsInsideItsBucket) {
  std::mt19937_64 rng(1);
  int previous_index = -1;
  for (int64_t v = 0; v < 5000; ++v) {  // dense low range, monotonic indices
    int i = LatencyHistogram::BucketIndex(v);
    EXPECT_GE(i, previous_index);
    previous_index = i;
    EXPECT_LE(LatencyHistogram::BucketLower(i), v);
    EXPECT_LT(v, LatencyHistogram::BucketLower(i) + LatencyHistogram::BucketWidth(i));
  }
  for (int n = 0; n < 100000; ++n) {
    int64_t v = static_cast<int64_t>(rng() >> (64 - 37));  // < 2^37
    int i = LatencyHistogram::BucketIndex(v);
    ASSERT_LE(LatencyHistogram::BucketLower(i), v);
    ASSERT_LT(v, LatencyHistogram::BucketLower(i) + LatencyHistogram::BucketWidth(i));
    ASSERT_LE(std::abs(LatencyHistogram::BucketValueNanos(i) - static_cast<double>(v)),
              LatencyHistogram::kMaxRelativeError * static_cast<double>(v) + 0.5);
  }
}

TEST_F(LatencyHistogramTest, HugeAndNegativeValuesAreClamped) {
  EXPECT_EQ(LatencyHistogram::BucketIndex(int64_t{1} << 40), LatencyHistogram::kBuckets - 1);
  EXPECT_EQ(LatencyHistogram::BucketIndex(INT64_MAX), LatencyHistogram::kBuckets - 1);
  LatencyHistogram histogram(&sampler_);
  histogram.Record(absl::Nanoseconds(-5));
  histogram.Record(absl::Hours(1));
  LatencyHistogram::Stats stats = histogram.Read();
  EXPECT_EQ(stats.count, 2);
  EXPECT_EQ(stats.p50, absl::ZeroDuration());
}

TEST_F(LatencyHistogramTest, EmptyHistogramReadsZero) {
  LatencyHistogram histogram(&sampler_);
  LatencyHistogram::Stats stats = histogram.Read();
  EXPECT_EQ(stats.count, 0);
  EXPECT_EQ(stats.total_count, 0);
  EXPECT_EQ(stats.p50, absl::ZeroDuration());
  EXPECT_EQ(stats.p999, absl::ZeroDuration());
  EXPECT_EQ(stats.mean, absl::ZeroDuration());
  EXPECT_EQ(stats.qps, 0);
}

TEST_F(LatencyHistogramTest, PercentilesAreWithinTheDocumentedErrorOfExactPercentiles) {
  // Log-uniform between 1 us and 10 s, plus a cluster, so that every
  // percentile lands in a different part of the range.
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> log_ns(std::log(1e3), std::log(1e10));
  std::normal_distribution<double> cluster(250e3, 20e3);
  std::vector<int64_t> samples;
  LatencyHistogram histogram(&sampler_);
  for (int i = 0; i < 200000; ++i) {
    double ns = i % 3 == 0 ? std::max(0.0, cluster(rng)) : std::exp(log_ns(rng));
    samples.push_back(static_cast<int64_t>(ns));
    histogram.RecordNanos(samples.back());
  }
  std::sort(samples.begin(), samples.end());
  auto exact = [&](double q) {
    auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(samples.size())));
    return static_cast<double>(samples[rank - 1]);
  };
  LatencyHistogram::Stats stats = histogram.Read();
  ASSERT_EQ(stats.count, static_cast<int64_t>(samples.size()));
  const std::pair<double, absl::Duration> checks[] = {
      {0.5, stats.p50}, {0.9, stats.p90}, {0.99, stats.p99}, {0.999, stats.p999}};
  for (const auto& [q, got] : checks) {
    double want = exact(q);
    double got_ns = absl::ToDoubleNanoseconds(got);
    EXPECT_LE(std::abs(got_ns - want), LatencyHistogram::kMaxRelativeError * want + 1)
        << "q=" << q << " exact=" << want << " reported=" << got_ns;
  }
  // Every quantile of the raw counts, too.
  LatencyHistogram::Counts counts = histogram.ReadCumulative();
  for (double q = 0.01; q < 1; q += 0.01) {
    double want = exact(q);
    EXPECT_LE(std::abs(LatencyHistogram::PercentileNanos(counts, q) - want),
              LatencyHistogram::kMaxRelativeError * want + 1)
        << "q=" << q;
  }
  double sum = 0;
  for (int64_t s : samples) sum += static_cast<double>(s);
  EXPECT_NEAR(absl::ToDoubleNanoseconds(stats.mean), sum / static_cast<double>(samples.size()), 1);
  EXPECT_GE(stats.max, absl::Nanoseconds(samples.back()));
}

TEST_F(LatencyHistogramTest, RecordingShowsBeforeTheNextTick) {
  LatencyHistogram histogram(&sampler_);
  histogram.Record(absl::Milliseconds(3));
  EXPECT_EQ(histogram.Read().count, 1);
}

TEST_F(LatencyHistogramTest, WindowForgetsSamplesOlderThanTheWindow) {
  LatencyHistogram histogram(&sampler_, absl::Seconds(10));
  for (int i = 0; i < 100; ++i) histogram.Record(absl::Milliseconds(100));
  for (int s = 0; s < 5; ++s) AdvanceOneSecond();
  for (int i = 0; i < 50; ++i) histogram.Record(absl::Milliseconds(1));
  LatencyHistogram::Stats stats = histogram.Read();
  EXPECT_EQ(stats.count, 150);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(stats.p50), 100, 100 * 0.04);

  // 11 s after the first batch it is out of the window; the second is in.
  for (int s = 0; s < 6; ++s) AdvanceOneSecond();
  stats = histogram.Read();
  EXPECT_EQ(stats.count, 50);
  EXPECT_NEAR(absl::ToDoubleMilliseconds(stats.p99), 1, 0.04);
  EXPECT_GE(stats.window, absl::Seconds(10));
  EXPECT_LT(stats.window, absl::Seconds(11));
  EXPECT_DOUBLE_EQ(stats.qps, 50 / absl::ToDoubleSeconds(stats.window));

  // Then the second batch goes too; the totals keep everything.
  for (int s = 0; s < 6; ++s) AdvanceOneSecond();
  stats = histogram.Read();
  EXPECT_EQ(stats.count, 0);
  EXPECT_EQ(stats.p50, absl::ZeroDuration());
  EXPECT_EQ(stats.qps, 0);
  EXPECT_EQ(stats.total_count, 150);
  EXPECT_EQ(stats.total_sum, absl::Milliseconds(100 * 100 + 50));
}

TEST_F(LatencyHistogramTest, WindowOfAYoungHistogramStartsAtConstruction) {
  LatencyHistogram histogram(&sampler_, absl::Seconds(10));
  for (int i = 0; i < 20; ++i) histogram.Record(absl::Microseconds(10));
  AdvanceOneSecond();
  AdvanceOneSecond();
  LatencyHistogram::Stats stats = histogram.Read();
  EXPECT_EQ(stats.window, absl::Seconds(2));
  EXPECT_DOUBLE_EQ(stats.qps, 10);
}

TEST_F(LatencyHistogramTest, ConcurrentRecordingFromSeveralThreadsLosesNothing) {
  LatencyHistogram histogram(&sampler_);
  constexpr int kThreads = 4;
  constexpr int kRecords = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kRecords; ++i) histogram.RecordNanos(1000 * (t + 1));
    });
  }
  // A reader and the sampler race with the writers.
  for (int s = 0; s < 3; ++s) {
    AdvanceOneSecond();
    EXPECT_LE(histogram.Read().count, kThreads * kRecords);
  }
  for (auto& thread : threads) thread.join();
  LatencyHistogram::Stats stats = histogram.Read();
  EXPECT_EQ(stats.count, kThreads * kRecords);
  EXPECT_EQ(stats.total_count, kThreads * kRecords);
  EXPECT_EQ(stats.total_sum, absl::Nanoseconds(int64_t{1000} * kRecords * (1 + 2 + 3 + 4)));
}

}  // namespace
}  // namespace nprpc
